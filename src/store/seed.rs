//! Deterministic demo data of any size: `backplane seed --orgs N`.
//!
//! The same N gives the same rows, ids included, on SQLite and PostgreSQL. Rows are
//! generated in memory a chunk of organizations at a time and written with
//! multi-row INSERTs inside one transaction.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::sea_query::ArrayType;
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait,
    PaginatorTrait, Statement, TransactionTrait, Value,
};

use super::entities::{
    invoice, invoice_line, organization, plan, staff_member, subscription, support_ticket,
    ticket_message, user,
};
use super::{Store, StoreError};
use organization::OrganizationStatus;

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub organizations: u64,
    pub users: u64,
    pub invoices: u64,
    pub invoice_lines: u64,
    pub tickets: u64,
    pub messages: u64,
}

/// The demo staff: subject, name, roles. `backplane dev` signs in as one of them.
pub const DEMO_STAFF: &[(&str, &str, &str)] = &[
    ("demo-admin", "Ada Admin", "admin"),
    ("demo-support", "Sam Support", "support"),
    ("demo-support-2", "Sky Support", "support"),
    ("demo-billing", "Bo Billing", "billing"),
    ("demo-finance", "Fin Finance", "finance"),
    ("demo-ops", "Oz Ops", "ops"),
    ("demo-auditor", "Aud Auditor", "auditor"),
    ("demo-lead", "Lee Lead", "support,ops"),
];

const PLANS: &[(&str, &str, i64, i64)] = &[
    ("free", "Free", 0, 40),
    ("starter", "Starter", 900, 180),
    ("team", "Team", 1900, 420),
    ("business", "Business", 4900, 1100),
    ("enterprise", "Enterprise", 9900, 2300),
];

const COMPANY_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Vandelay",
    "Pied Piper",
    "Dunder",
    "Massive",
    "Nimbus",
    "Blue Harbor",
    "Northwind",
    "Contoso",
];
const COMPANY_B: &[&str] = &[
    "Logistics",
    "Labs",
    "Systems",
    "Foods",
    "Health",
    "Media",
    "Energy",
    "Robotics",
    "Analytics",
    "Studios",
    "Capital",
    "Retail",
    "Travel",
    "Security",
    "Cloud",
];
const FIRST: &[&str] = &[
    "Alex", "Blair", "Casey", "Dana", "Eli", "Frankie", "Gray", "Harper", "Indy", "Jordan", "Kai",
    "Logan", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Riley", "Sasha", "Taylor",
];
const LAST: &[&str] = &[
    "Anders", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ivanova", "Jones",
    "Kim", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
];
const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2"];
const SUBJECTS: &[&str] = &[
    "Cannot log in after password reset",
    "Invoice shows the wrong seat count",
    "Export to CSV times out",
    "Please add a user to our account",
    "SSO configuration question",
    "Charged twice this month",
    "Feature request: audit export",
    "API rate limit exceeded",
    "How do I downgrade my plan?",
    "Webhook deliveries failing",
];

/// Organizations generated and written per round: bounds memory for any N.
const ORGS_PER_ROUND: i64 = 2_000;
/// Rows per INSERT statement: under SQLite's and PostgreSQL's bind limits for
/// our widest table.
const ROWS_PER_INSERT: usize = 2_000;

/// "Now" of the demo data, fixed so that the data are the same on every run.
pub fn demo_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Fills an empty database with `orgs` organizations and everything around them.
pub async fn seed(store: &Store, orgs: u64) -> Result<SeedReport, StoreError> {
    let db = store.db();
    let existing = organization::Entity::find().count(db).await?;
    if existing > 0 {
        return Err(StoreError::AlreadySeeded {
            organizations: existing,
        });
    }
    let now = demo_now();
    let txn = db.begin().await?;
    let plans: Vec<plan::Model> = PLANS
        .iter()
        .enumerate()
        .map(|(i, (code, name, price, cost))| plan::Model {
            id: i as i64 + 1,
            code: (*code).into(),
            name: (*name).into(),
            price_cents: *price,
            currency: "USD".into(),
            unit_cost_cents: *cost,
            created_at: now - Duration::days(2000),
        })
        .collect();
    insert_all::<plan::Entity, _>(&txn, plans.clone()).await?;
    let staff: Vec<staff_member::Model> = DEMO_STAFF
        .iter()
        .enumerate()
        .map(|(i, (subject, name, roles))| staff_member::Model {
            id: i as i64 + 1,
            subject: (*subject).into(),
            email: format!("{subject}@backplane.example"),
            name: (*name).into(),
            roles: (*roles).into(),
            last_seen_at: None,
            created_at: now - Duration::days(900),
        })
        .collect();
    insert_all::<staff_member::Entity, _>(&txn, staff.clone()).await?;

    let mut generator = Generator {
        rng: ChaCha8Rng::seed_from_u64(0x6261_636b_706c_616e),
        now,
        plans,
        staff_count: staff.len() as i64,
        next: Ids::default(),
        report: SeedReport::default(),
    };
    let total = orgs as i64;
    if txn.get_database_backend() == DbBackend::Postgres {
        // PostgreSQL: the reference rows commit first; the organizations are then
        // written by a few connections at once, a round per transaction, while
        // this task generates the next rounds (generation is sequential, so ids
        // stay deterministic). PostgreSQL's per-row work (foreign-key checks,
        // index entries) is what takes the time, and it spreads over cores.
        txn.commit().await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Round>(PARALLEL_WRITERS);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let mut writers = Vec::new();
        for _ in 0..PARALLEL_WRITERS {
            let rx = rx.clone();
            let db = db.clone();
            writers.push(tokio::spawn(async move {
                loop {
                    let round = rx.lock().await.recv().await;
                    let Some(round) = round else {
                        return Ok::<(), StoreError>(());
                    };
                    let txn = db.begin().await?;
                    write_round(&txn, round).await?;
                    txn.commit().await?;
                }
            }));
        }
        let mut start = 1;
        while start <= total {
            let end = (start + ORGS_PER_ROUND - 1).min(total);
            if tx.send(generator.round(start, end)).await.is_err() {
                break; // a writer failed; its error is reported below
            }
            start = end + 1;
        }
        drop(tx);
        for writer in writers {
            writer
                .await
                .map_err(|e| StoreError::SeedIncomplete(Box::new(e)))?
                .map_err(|e| StoreError::SeedIncomplete(Box::new(e)))?;
        }
        let txn = db.begin().await?;
        reset_sequences(&txn).await?;
        txn.commit().await?;
        return Ok(generator.report);
    }
    let mut start = 1;
    while start <= total {
        let end = (start + ORGS_PER_ROUND - 1).min(total);
        write_round(&txn, generator.round(start, end)).await?;
        start = end + 1;
    }
    txn.commit().await?;
    Ok(generator.report)
}

/// Organizations written per PostgreSQL connection at once.
const PARALLEL_WRITERS: usize = 3;

async fn write_round(db: &impl ConnectionTrait, batch: Round) -> Result<(), StoreError> {
    insert_all::<organization::Entity, _>(db, batch.orgs).await?;
    insert_all::<subscription::Entity, _>(db, batch.subscriptions).await?;
    insert_all::<user::Entity, _>(db, batch.users).await?;
    insert_all::<invoice::Entity, _>(db, batch.invoices).await?;
    insert_all::<invoice_line::Entity, _>(db, batch.lines).await?;
    insert_all::<support_ticket::Entity, _>(db, batch.tickets).await?;
    insert_all::<ticket_message::Entity, _>(db, batch.messages).await?;
    Ok(())
}

/// Rows were written with explicit ids: move each PostgreSQL sequence past them.
async fn reset_sequences(db: &impl ConnectionTrait) -> Result<(), StoreError> {
    for table in [
        "plans",
        "staff_members",
        "organizations",
        "subscriptions",
        "users",
        "invoices",
        "invoice_lines",
        "support_tickets",
        "ticket_messages",
    ] {
        db.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM \"{table}\"), 1), (SELECT COUNT(*) > 0 FROM \"{table}\"))"
        ))
        .await?;
    }
    Ok(())
}

async fn insert_all<E, M>(db: &impl ConnectionTrait, rows: Vec<M>) -> Result<(), StoreError>
where
    E: EntityTrait,
    M: IntoActiveModel<E::ActiveModel> + ModelTrait<Entity = E>,
{
    if db.get_database_backend() == DbBackend::Postgres {
        return insert_unnest::<E, M>(db, rows).await;
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<E::ActiveModel> = rows
            .by_ref()
            .take(ROWS_PER_INSERT)
            .map(IntoActiveModel::into_active_model)
            .collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

/// PostgreSQL: one `INSERT … SELECT … FROM UNNEST($1::bigint[], …)` per chunk,
/// one bound array per column. Several times faster than multi-row VALUES,
/// whose thousands of parameters PostgreSQL must parse and plan. Arrays cannot
/// carry NULLs through sqlx, so a nullable column travels with a boolean mask.
async fn insert_unnest<E, M>(db: &impl ConnectionTrait, rows: Vec<M>) -> Result<(), StoreError>
where
    E: EntityTrait,
    M: ModelTrait<Entity = E>,
{
    const ROWS_PER_UNNEST: usize = 20_000;
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let table = E::default().table_name().to_owned();
    for chunk in rows.chunks(ROWS_PER_UNNEST) {
        let mut names = Vec::new();
        let mut selects = Vec::new();
        let mut arrays = Vec::new();
        let mut aliases = Vec::new();
        let mut values = Vec::new();
        for column in &columns {
            let cells: Vec<Value> = chunk.iter().map(|m| m.get(*column)).collect();
            let (cells, nulls) = split_nulls(cells);
            let (array_type, cast) = match cells.first() {
                Some(Value::BigInt(_)) => (ArrayType::BigInt, "bigint[]"),
                Some(Value::Bool(_)) => (ArrayType::Bool, "boolean[]"),
                Some(Value::ChronoDateTimeUtc(_)) => {
                    (ArrayType::ChronoDateTimeUtc, "timestamptz[]")
                }
                _ => (ArrayType::String, "text[]"),
            };
            let n = values.len();
            names.push(format!("\"{}\"", column.as_str()));
            arrays.push(format!("${}::{cast}", n + 1));
            aliases.push(format!("c{n}"));
            values.push(Value::Array(array_type, Some(Box::new(cells))));
            match nulls {
                Some(mask) => {
                    let m = values.len();
                    arrays.push(format!("${}::boolean[]", m + 1));
                    aliases.push(format!("c{m}"));
                    values.push(Value::Array(ArrayType::Bool, Some(Box::new(mask))));
                    selects.push(format!("CASE WHEN c{m} THEN NULL ELSE c{n} END"));
                }
                None => selects.push(format!("c{n}")),
            }
        }
        let sql = format!(
            "INSERT INTO \"{table}\" ({}) SELECT {} FROM UNNEST({}) AS u({})",
            names.join(", "),
            selects.join(", "),
            arrays.join(", "),
            aliases.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Replaces NULL cells by a placeholder of their type and returns the mask of
/// which were NULL (`None` when none was).
fn split_nulls(cells: Vec<Value>) -> (Vec<Value>, Option<Vec<Value>>) {
    let is_null = |v: &Value| {
        matches!(
            v,
            Value::BigInt(None)
                | Value::Bool(None)
                | Value::String(None)
                | Value::ChronoDateTimeUtc(None)
        )
    };
    if !cells.iter().any(is_null) {
        return (cells, None);
    }
    let mask = cells
        .iter()
        .map(|v| Value::Bool(Some(is_null(v))))
        .collect();
    let cells = cells
        .into_iter()
        .map(|v| match v {
            Value::BigInt(None) => Value::BigInt(Some(0)),
            Value::Bool(None) => Value::Bool(Some(false)),
            Value::String(None) => Value::String(Some(String::new())),
            Value::ChronoDateTimeUtc(None) => {
                Value::ChronoDateTimeUtc(Some(DateTime::<Utc>::UNIX_EPOCH))
            }
            other => other,
        })
        .collect();
    (cells, Some(mask))
}

#[derive(Default)]
struct Ids {
    subscription: i64,
    user: i64,
    invoice: i64,
    line: i64,
    ticket: i64,
    message: i64,
}

#[derive(Default)]
struct Round {
    orgs: Vec<organization::Model>,
    subscriptions: Vec<subscription::Model>,
    users: Vec<user::Model>,
    invoices: Vec<invoice::Model>,
    lines: Vec<invoice_line::Model>,
    tickets: Vec<support_ticket::Model>,
    messages: Vec<ticket_message::Model>,
}

struct Generator {
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    plans: Vec<plan::Model>,
    staff_count: i64,
    next: Ids,
    report: SeedReport,
}

impl Generator {
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.gen_range(0..items.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    fn round(&mut self, first_org: i64, last_org: i64) -> Round {
        let mut r = Round::default();
        for org_id in first_org..=last_org {
            self.organization(org_id, &mut r);
        }
        self.report.organizations += r.orgs.len() as u64;
        self.report.users += r.users.len() as u64;
        self.report.invoices += r.invoices.len() as u64;
        self.report.invoice_lines += r.lines.len() as u64;
        self.report.tickets += r.tickets.len() as u64;
        self.report.messages += r.messages.len() as u64;
        r
    }

    fn organization(&mut self, org_id: i64, r: &mut Round) {
        let name = format!(
            "{} {} {}",
            self.pick(COMPANY_A),
            self.pick(COMPANY_B),
            org_id
        );
        let slug = name.to_lowercase().replace(' ', "-");
        let status = match self.rng.gen_range(0..100) {
            0..=69 => OrganizationStatus::Active,
            70..=84 => OrganizationStatus::Trial,
            85..=92 => OrganizationStatus::Suspended,
            _ => OrganizationStatus::Churned,
        };
        let created_at = self.now
            - Duration::days(self.rng.gen_range(20..1500))
            - Duration::seconds(self.rng.gen_range(0..86_400));
        let plan = if status == OrganizationStatus::Trial {
            self.plans[0].clone()
        } else {
            self.plans[self.rng.gen_range(1..self.plans.len())].clone()
        };
        let user_count = self.rng.gen_range(3..=30i64);
        let seats = user_count + self.rng.gen_range(0..=5);
        let discount = if self.chance(20) {
            [5, 10, 15, 20][self.rng.gen_range(0..4)]
        } else {
            0
        };
        let monthly_price = plan.price_cents * seats * (100 - discount) / 100;
        let monthly_cost = plan.unit_cost_cents * user_count + self.rng.gen_range(500..5_000);
        let margin_bps = if monthly_price > 0 {
            (monthly_price - monthly_cost) * 10_000 / monthly_price
        } else {
            -10_000
        };
        let region = self.pick(REGIONS).to_owned();
        r.orgs.push(organization::Model {
            id: org_id,
            name,
            slug: slug.clone(),
            status,
            region,
            monthly_cost_cents: monthly_cost,
            gross_margin_bps: margin_bps,
            fraud_review: self.chance(3),
            vip: self.chance(5),
            churn_risk: status == OrganizationStatus::Suspended || self.chance(8),
            beta_access: self.chance(15),
            created_at,
            updated_at: created_at + Duration::days(self.rng.gen_range(0..20)),
            // A trial in progress, ending within two weeks (from the id, so
            // that the rest of the seed stays as it was).
            trial_ends_at: (status == OrganizationStatus::Trial)
                .then(|| self.now + Duration::days(1 + org_id % 14)),
            trial_extension_days: 0,
            version: 1,
        });

        self.next.subscription += 1;
        let period_start = self.now - Duration::days(self.rng.gen_range(0..30));
        r.subscriptions.push(subscription::Model {
            id: self.next.subscription,
            organization_id: org_id,
            plan_id: plan.id,
            seats,
            status: match status {
                OrganizationStatus::Trial => subscription::SubscriptionStatus::Trialing,
                OrganizationStatus::Active => subscription::SubscriptionStatus::Active,
                OrganizationStatus::Suspended => subscription::SubscriptionStatus::PastDue,
                OrganizationStatus::Churned => subscription::SubscriptionStatus::Canceled,
            },
            current_period_start: period_start,
            current_period_end: period_start + Duration::days(30),
            discount_percent: discount,
            created_at,
            version: 1,
        });

        let first_user = self.next.user + 1;
        for n in 0..user_count {
            self.next.user += 1;
            let first = self.pick(FIRST);
            let last = self.pick(LAST);
            r.users.push(user::Model {
                id: self.next.user,
                organization_id: org_id,
                email: format!(
                    "{}.{}{}@{}.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    n + 1,
                    slug
                ),
                name: format!("{first} {last}"),
                org_role: match n {
                    0 => user::UserOrgRole::Owner,
                    1 | 2 => user::UserOrgRole::Admin,
                    _ => user::UserOrgRole::Member,
                },
                status: match self.rng.gen_range(0..100) {
                    0..=84 => user::UserStatus::Active,
                    85..=94 => user::UserStatus::Invited,
                    _ => user::UserStatus::Disabled,
                },
                last_seen_at: self
                    .chance(80)
                    .then(|| self.now - Duration::minutes(self.rng.gen_range(1..60 * 24 * 60))),
                created_at: created_at + Duration::days(n),
            });
        }
        let last_user = self.next.user;

        if plan.price_cents > 0 {
            let months = ((self.now - created_at).num_days() / 30).clamp(1, 6);
            for m in (0..months).rev() {
                self.next.invoice += 1;
                let issued_at = self.now - Duration::days(30 * m + 1);
                let status = if m == 0 {
                    invoice::InvoiceStatus::Open
                } else {
                    match self.rng.gen_range(0..100) {
                        0..=89 => invoice::InvoiceStatus::Paid,
                        90..=94 => invoice::InvoiceStatus::Void,
                        _ => invoice::InvoiceStatus::Uncollectible,
                    }
                };
                let invoice_id = self.next.invoice;
                let mut amount = 0;
                let add_on = self.chance(30);
                let mut lines = vec![(
                    format!("{} plan, {} seats", plan.name, seats),
                    seats,
                    plan.price_cents,
                )];
                if add_on {
                    lines.push(("Extra storage".into(), self.rng.gen_range(1..5), 500));
                }
                if discount > 0 {
                    lines.push((
                        format!("Discount {discount}%"),
                        1,
                        -(plan.price_cents * seats * discount / 100),
                    ));
                }
                for (description, quantity, unit) in lines {
                    self.next.line += 1;
                    amount += quantity * unit;
                    r.lines.push(invoice_line::Model {
                        id: self.next.line,
                        invoice_id,
                        description,
                        quantity,
                        unit_amount_cents: unit,
                        amount_cents: quantity * unit,
                    });
                }
                r.invoices.push(invoice::Model {
                    id: invoice_id,
                    organization_id: org_id,
                    number: format!("INV-{org_id:06}-{:03}", months - m),
                    amount_cents: amount,
                    currency: "USD".into(),
                    status,
                    issued_at,
                    due_at: issued_at + Duration::days(14),
                    paid_at: (status == invoice::InvoiceStatus::Paid)
                        .then(|| issued_at + Duration::days(self.rng.gen_range(0..14))),
                    processing_fee_cents: amount * 29 / 1000 + 30,
                    created_at: issued_at,
                    payment_reference: (status == invoice::InvoiceStatus::Paid)
                        .then(|| format!("pay_{invoice_id:08}")),
                    credited_cents: 0,
                    version: 1,
                });
            }
        }

        for _ in 0..self.rng.gen_range(0..=5) {
            self.next.ticket += 1;
            let ticket_id = self.next.ticket;
            let requester = self.rng.gen_range(first_user..=last_user);
            let opened = self.now - Duration::hours(self.rng.gen_range(1..24 * 120));
            let assignee = self
                .chance(75)
                .then(|| self.rng.gen_range(1..=self.staff_count));
            let status = match self.rng.gen_range(0..100) {
                0..=29 => support_ticket::TicketStatus::Open,
                30..=49 => support_ticket::TicketStatus::Pending,
                50..=79 => support_ticket::TicketStatus::Solved,
                _ => support_ticket::TicketStatus::Closed,
            };
            let subject = self.pick(SUBJECTS).to_owned();
            r.tickets.push(support_ticket::Model {
                id: ticket_id,
                organization_id: org_id,
                requester_id: requester,
                assignee_id: assignee,
                subject: subject.clone(),
                status,
                priority: match self.rng.gen_range(0..100) {
                    0..=19 => support_ticket::TicketPriority::Low,
                    20..=69 => support_ticket::TicketPriority::Normal,
                    70..=92 => support_ticket::TicketPriority::High,
                    _ => support_ticket::TicketPriority::Urgent,
                },
                internal_notes: self
                    .chance(40)
                    .then(|| "Customer is evaluating a competitor; handle with care.".to_owned()),
                created_at: opened,
                updated_at: opened + Duration::hours(self.rng.gen_range(0..48)),
                version: 1,
            });
            for k in 0..self.rng.gen_range(1..=4i64) {
                self.next.message += 1;
                let from_staff = k % 2 == 1 && assignee.is_some();
                r.messages.push(ticket_message::Model {
                    id: self.next.message,
                    ticket_id,
                    author_user_id: (!from_staff).then_some(requester),
                    author_staff_id: if from_staff { assignee } else { None },
                    body: if from_staff {
                        "Thanks for reaching out, we are looking into it.".into()
                    } else {
                        format!("{subject}. Can you help?")
                    },
                    internal: false,
                    created_at: opened + Duration::minutes(k * 37),
                });
            }
        }
    }
}
