//! A person in a customer organization.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "User")]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub organization_id: i64,
    #[catalog(PersonalData, "Personal data: the sign-in email, lower-case.")]
    pub email: String,
    #[catalog(PersonalData, "Personal data: the full name.")]
    pub name: String,
    #[catalog(Public, "The user's role inside their own organization.")]
    pub org_role: UserOrgRole,
    #[catalog(Public, "Whether the user can sign in.")]
    pub status: UserStatus,
    #[catalog(Public, "Last activity; null when the user never signed in.")]
    pub last_seen_at: Option<DateTimeUtc>,
    #[catalog(Public, "When the user was added.")]
    pub created_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum UserOrgRole {
    #[sea_orm(string_value = "OWNER")]
    Owner,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "MEMBER")]
    Member,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum UserStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "INVITED")]
    Invited,
    #[sea_orm(string_value = "DISABLED")]
    Disabled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
