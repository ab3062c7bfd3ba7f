//! `#[derive(Catalog)]`: a sea-orm model's columns as the catalog's column
//! fields, so that a column is described once, where it is declared.
//!
//! On the model: `#[catalog(entity = "Organization")]` names the catalog
//! entity (the GraphQL type). On each field, `#[catalog(Class, "description")]`
//! gives its class and description; the GraphQL name is the field's name in
//! lowerCamelCase, the column its name, the GraphQL type follows from the Rust
//! type (`i64` → `Int`, `id` → `ID`, `String` → `String`, `bool` →
//! `Boolean`, `DateTimeUtc` → `DateTime`, another type → the enum of that
//! name, `Option<…>` → nullable). Options: `nullable` (nullable in GraphQL
//! though not in the table: cost fields), `list` (a comma-separated text
//! column, as a list), `on = "InternalFlags"` (a field of an object embedded
//! over the same row), `skip` (not a GraphQL field: foreign keys, internal
//! columns).
//!
//! **Closed by default:** a field with no `#[catalog]` attribute is a field
//! of class `Unclassified`: in the schema for admins only, its reads
//! audited, until someone gives it a class.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Token, Type, parse_macro_input};

/// Types that are not enums and have no GraphQL scalar here.
const NOT_ENUMS: &[&str] = &[
    "DateTime",
    "NaiveDateTime",
    "Date",
    "NaiveDate",
    "Time",
    "DateTimeWithTimeZone",
    "DateTimeLocal",
    "Decimal",
    "Uuid",
    "Json",
    "Vec",
    "Option",
    "Box",
    "HashMap",
    "BTreeMap",
];

/// One argument of `#[catalog(...)]`.
enum Arg {
    Word(Ident),
    Text(LitStr),
    Named(Ident, LitStr),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return Ok(Arg::Text(input.parse()?));
        }
        let ident: Ident = input.parse()?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            return Ok(Arg::Named(ident, input.parse()?));
        }
        Ok(Arg::Word(ident))
    }
}

fn args(attrs: &[syn::Attribute]) -> syn::Result<Option<Vec<Arg>>> {
    for attr in attrs {
        if attr.path().is_ident("catalog") {
            let list = attr.parse_args_with(Punctuated::<Arg, Token![,]>::parse_terminated)?;
            return Ok(Some(list.into_iter().collect()));
        }
    }
    Ok(None)
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The column a field is stored in, when `#[sea_orm(column_name = "…")]`
/// renames it.
fn column_name(field: &syn::Field) -> syn::Result<Option<String>> {
    let mut name = None;
    for attr in &field.attrs {
        if attr.path().is_ident("sea_orm") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("column_name") {
                    name = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.input.peek(Token![=]) {
                    // Another `key = value`: read its value to go on.
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            })?;
        }
    }
    Ok(name)
}

/// The last segment of a type path and its first generic argument.
fn segment(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let inner = match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((last.ident.to_string(), inner))
}

/// Derives `Model::CATALOG`, the model's column fields for the catalog.
#[proc_macro_derive(Catalog, attributes(catalog, sea_orm))]
pub fn derive_catalog(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let name = &input.ident;
    let mut entity = None;
    for arg in args(&input.attrs)?.unwrap_or_default() {
        if let Arg::Named(key, value) = arg
            && key == "entity"
        {
            entity = Some(value.value());
        }
    }
    let Some(entity) = entity else {
        return Err(syn::Error::new_spanned(
            name,
            "#[catalog(entity = \"GraphQLType\")] names the catalog entity",
        ));
    };
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(name, "a struct of columns"));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(name, "named fields"));
    };
    let mut columns = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let column = column_name(field)?.unwrap_or_else(|| ident.to_string());
        let mut class = None;
        let mut description = None;
        let mut nullable = false;
        let mut list = false;
        let mut skip = false;
        let mut owner = entity.clone();
        let mut graphql = lower_camel(&ident.to_string());
        match args(&field.attrs)? {
            None => {
                class = Some(Ident::new("Unclassified", ident.span()));
                description = Some(
                    "Not classified yet: for admins only until it is given a class.".to_owned(),
                );
            }
            Some(list_of_args) => {
                for arg in list_of_args {
                    match arg {
                        Arg::Text(text) => description = Some(text.value()),
                        Arg::Word(word) => match word.to_string().as_str() {
                            "nullable" => nullable = true,
                            "list" => list = true,
                            "skip" => skip = true,
                            _ => class = Some(word),
                        },
                        Arg::Named(key, value) => match key.to_string().as_str() {
                            "on" => owner = value.value(),
                            "name" => graphql = value.value(),
                            _ => return Err(syn::Error::new_spanned(key, "`on` or `name`")),
                        },
                    }
                }
            }
        }
        if skip {
            continue;
        }
        let Some(class) = class else {
            return Err(syn::Error::new_spanned(
                ident,
                "a class: Public, PersonalData, CostData, InternalFlag, InternalNote or Unclassified",
            ));
        };
        let Some(description) = description else {
            return Err(syn::Error::new_spanned(
                ident,
                "a description: every field is documented",
            ));
        };
        let (mut ty_name, mut inner) =
            segment(&field.ty).ok_or_else(|| syn::Error::new_spanned(&field.ty, "a named type"))?;
        if ty_name == "Option" {
            nullable = true;
            let Some(t) = inner else {
                return Err(syn::Error::new_spanned(&field.ty, "Option<T>"));
            };
            (ty_name, inner) =
                segment(t).ok_or_else(|| syn::Error::new_spanned(t, "a named type"))?;
        }
        let _ = inner;
        let scalar = match ty_name.as_str() {
            "i64" | "i32" if column == "id" => quote!(crate::catalog::Scalar::Id),
            "i64" | "i32" => quote!(crate::catalog::Scalar::Int),
            "String" if list => quote!(crate::catalog::Scalar::TextList),
            "String" => quote!(crate::catalog::Scalar::Text),
            "bool" => quote!(crate::catalog::Scalar::Bool),
            // A UTC instant; a `DateTime` of sea-orm's prelude is a naive
            // date-time (no offset), which the API does not serve.
            "DateTimeUtc" => quote!(crate::catalog::Scalar::Time),
            // A type the API has no scalar for yet: refused here, rather than
            // taken for an enum that does not exist.
            other
                if other.starts_with(|c: char| c.is_ascii_lowercase())
                    || NOT_ENUMS.contains(&other) =>
            {
                return Err(syn::Error::new_spanned(
                    &field.ty,
                    format!(
                        "no GraphQL type for a `{other}` column yet: give it a scalar in the catalog, or #[catalog(skip)] it"
                    ),
                ));
            }
            // Anything else is one of the store's enums (`DeriveActiveEnum`),
            // mirrored in GraphQL under the same name.
            other => quote!(crate::catalog::Scalar::Enum(#other)),
        };
        columns.push(quote! {
            crate::catalog::Column {
                owner: #owner,
                field: crate::catalog::Field {
                    name: #graphql,
                    description: #description,
                    class: crate::catalog::Class::#class,
                    source: crate::catalog::Source::Column {
                        column: #column,
                        scalar: #scalar,
                        nullable: #nullable,
                    },
                },
            }
        });
    }
    Ok(quote! {
        impl #name {
            /// The catalog's column fields of this model (derived from its
            /// `#[catalog]` attributes).
            pub const CATALOG: &'static [crate::catalog::Column] = &[#(#columns),*];
        }
    })
}
