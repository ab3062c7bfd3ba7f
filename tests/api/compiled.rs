//! Reads compiled to one SQL statement, on PostgreSQL and SQLite: the same
//! answers as the executor, byte for byte, in one statement, with the same
//! audit record.
//!
//! Two servers share one seeded database: the reference runs with compiled
//! reads off (async-graphql's executor answers everything), the other with
//! them on. Every document is asked of both; on the compiled server its first
//! run goes to the executor (which validates it) and the next ones are
//! compiled, so each answer is compared three ways.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_configured, spawn_app_on_configured};
use crate::statements::DEEP;

const SUPPORT: &str = "query SupportLookup($slug: String!) {
  organizationBySlug(slug: $slug) {
    id name slug status region createdAt
    plan { code name priceCents }
    subscription { seats status currentPeriodEnd discountPercent }
    users(first: 50) { totalCount nodes { id email name orgRole status lastSeenAt } }
    invoices(first: 5) { nodes { number amountCents currency status issuedAt dueAt } }
  }
}";

const ADMIN: &str = "query AdminList {
  organizations(first: 50, orderBy: NAME_ASC) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id name slug status region createdAt
      plan { code name priceCents }
      subscription { seats status currentPeriodEnd }
      users(first: 10) { totalCount nodes { id email name status } }
      invoices(first: 10) { totalCount nodes { number amountCents currency status issuedAt } }
    }
  }
}";

/// Every compiled field of every type, fragments, inline fragments, aliases,
/// merged fields, `@skip`/`@include`, empty pages and missing rows.
const EVERYTHING: &str = "query Everything($skipFlags: Boolean!, $withEdges: Boolean = true,
    $order: OrganizationOrder, $filter: OrganizationFilter, $first: Int) {
  __typename
  organizations(first: $first, orderBy: $order, filter: $filter) {
    __typename totalCount
    pageInfo { __typename hasNextPage endCursor }
    edges @include(if: $withEdges) { __typename cursor node { ...Org } }
    nodes { id ... on Organization { name } name slug
      flags: internalFlags @skip(if: $skipFlags) { fraudReview vip churnRisk betaAccess __typename } }
  }
  none: organizations(first: 0) { totalCount nodes { id } pageInfo { hasNextPage endCursor } }
  missing: organizationBySlug(slug: \"no-such-organization\") { id }
}
fragment Org on Organization {
  __typename id name slug status region createdAt updatedAt monthlyCostCents grossMarginBps
  plan { __typename id code name priceCents currency unitCostCents
    subscriptions(first: 2) { totalCount nodes { id } } }
  subscription { id seats status currentPeriodStart currentPeriodEnd discountPercent createdAt
    plan { code } organization { slug } }
  users(first: 3) { edges { cursor node { id email name orgRole status lastSeenAt createdAt
    organization { id } tickets(first: 2) { totalCount nodes { id } } } } }
  invoices(first: 3) { pageInfo { endCursor hasNextPage } nodes { id number amountCents currency
    status issuedAt dueAt paidAt processingFeeCents organization { id }
    lines(first: 2) { nodes { id description quantity unitAmountCents amountCents invoice { number } } } } }
  tickets(first: 3) { edges { cursor } nodes { id subject status priority createdAt updatedAt
    internalNotes organization { id } requester { email }
    assignee { id subject email name roles lastSeenAt assignedTickets(first: 2) { totalCount edges { cursor } } }
    messages(first: 3) { nodes { id body internal createdAt ticket { id } authorUser { id } authorStaff { id } } } } }
}";

const BY_ID: &str = "query ById($org: ID!, $user: ID!, $invoice: ID!, $ticket: ID!, $staff: ID!) {
  organization(id: $org) { id slug }
  user(id: $user) { id email organization { slug } }
  invoice(id: $invoice) { id number lines { totalCount } }
  ticket(id: $ticket) { id subject messages(first: 1) { nodes { body } } }
  staffMember(id: $staff) { id name roles }
  nobody: user(id: \"usr_999999999\") { id }
}";

/// The root lists other than `organizations`, with their filters and orders.
const LISTS: &str = "query Lists($first: Int, $after: String,
    $userFilter: UserFilter, $userOrder: UserOrder,
    $invoiceFilter: InvoiceFilter, $invoiceOrder: InvoiceOrder,
    $ticketFilter: SupportTicketFilter, $ticketOrder: SupportTicketOrder) {
  users(first: $first, filter: $userFilter, orderBy: $userOrder) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id email name status lastSeenAt organization { slug } } }
  invoices(first: $first, filter: $invoiceFilter, orderBy: $invoiceOrder) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id number amountCents currency status issuedAt } } }
  tickets(first: $first, filter: $ticketFilter, orderBy: $ticketOrder) {
    totalCount pageInfo { startCursor endCursor }
    nodes { id subject status priority createdAt requester { email } assignee { name } } }
  staffMembers(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id name roles } }
}";

struct Pair {
    reference: TestApp,
    compiled: TestApp,
    token: String,
}

async fn pair(backend: Backend) -> Pair {
    let reference = spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
        c.compile_reads = false;
    })
    .await;
    let compiled =
        spawn_app_on_configured(reference.database_url(), &reference.issuer, |_| {}).await;
    let token = reference.issuer.token("admin-1", &["admin"]);
    // Text JSON must escape, and instants with a fraction of a second (the
    // seed's are whole seconds): chrono prints 3 or 6 digits, or none.
    let db = sea_orm::Database::connect(reference.database_url())
        .await
        .expect("connect");
    let adjust = match backend {
        Backend::Postgres => ADJUST_POSTGRES,
        Backend::Sqlite => ADJUST_SQLITE,
    };
    db.execute_unprepared(adjust)
        .await
        .expect("adjust the seed");
    // The first request of a principal records it in the staff directory.
    reference.query("{ viewer { subject } }", json!({})).await;
    Pair {
        reference,
        compiled,
        token,
    }
}

/// Text JSON must escape, and instants with a fraction of a second.
const ADJUST_POSTGRES: &str = r#"
        UPDATE organizations SET name = 'AAA "q" \ ' || E'\n\t\u0001' || 'ünï 😀 ' || name,
            updated_at = updated_at + interval '0.5 seconds'
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id LIMIT 2);
        UPDATE organizations SET created_at = created_at + interval '0.123456 seconds'
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id OFFSET 2 LIMIT 2);
        UPDATE organizations SET created_at = created_at + interval '0.12 seconds',
            updated_at = updated_at + interval '0.000001 seconds'
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id OFFSET 4 LIMIT 2);
        UPDATE users SET last_seen_at = last_seen_at + interval '0.000010 seconds'
          WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 40);
        "#;

/// The same on SQLite, whose instants are RFC 3339 text (the seed's whole
/// seconds, `+00:00`), given a fraction as text.
const ADJUST_SQLITE: &str = r#"
        UPDATE organizations SET name = 'AAA "q" \ ' || char(10, 9, 1) || 'ünï 😀 ' || name,
            updated_at = replace(updated_at, '+00:00', '.500+00:00')
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id LIMIT 2);
        UPDATE organizations SET created_at = replace(created_at, '+00:00', '.123456+00:00')
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id LIMIT 2 OFFSET 2);
        UPDATE organizations SET created_at = replace(created_at, '+00:00', '.12+00:00'),
            updated_at = replace(updated_at, '+00:00', '.000001+00:00')
          WHERE id IN (SELECT id FROM organizations ORDER BY created_at, id LIMIT 2 OFFSET 4);
        UPDATE users SET last_seen_at = replace(last_seen_at, '+00:00', '.000010+00:00')
          WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 40);
        "#;

impl Pair {
    /// Asks both servers; returns the answer and the statements the compiled
    /// server sent for it.
    async fn ask(&self, query: &str, variables: &Value) -> (String, u64) {
        let (status, expected) = self
            .reference
            .graphql_text(&self.token, query, variables.clone())
            .await;
        assert_eq!(status, 200, "{expected}");
        assert!(!expected.contains("\"errors\""), "{expected}");
        let (statements, (status, answer)) = self
            .compiled
            .statements_during(
                self.compiled
                    .graphql_text(&self.token, query, variables.clone()),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, expected, "the answers differ for {variables}");
        (answer, statements)
    }

    /// Asks both servers, errors or not; the compiled server must answer the
    /// same bytes. Returns the answer.
    async fn same_answer(&self, query: &str, variables: &Value) -> String {
        let (_, expected) = self
            .reference
            .graphql_text(&self.token, query, variables.clone())
            .await;
        let (_, answer) = self
            .compiled
            .graphql_text(&self.token, query, variables.clone())
            .await;
        assert_eq!(answer, expected, "for {variables}");
        answer
    }

    /// Asks a new document: the compiled server's executor answers first, then
    /// the compiled statement does.
    async fn learn_and_ask(&self, query: &str, variables: Value) -> String {
        let (_, first) = self.ask(query, &variables).await;
        assert!(first > 1, "the first run of a document is the executor's");
        let (answer, statements) = self.ask(query, &variables).await;
        assert_eq!(statements, 1, "compiled: one statement, for {variables}");
        answer
    }
}

async fn compiled_reads_answer_as_the_executor_does_in_one_statement(backend: Backend) {
    let p = pair(backend).await;
    let first = p
        .reference
        .query(
            "{ organizations(first: 1, filter: {status: ACTIVE}) { nodes { slug } } }",
            json!({}),
        )
        .await;
    let slug = first["organizations"]["nodes"][0]["slug"]
        .as_str()
        .expect("slug")
        .to_owned();

    let answer = p.learn_and_ask(SUPPORT, json!({ "slug": slug })).await;
    assert!(answer.contains("\"users\""), "{answer}");
    // Surrounding spaces are trimmed, as by the executor.
    p.ask(SUPPORT, &json!({ "slug": format!(" {slug} ") }))
        .await;
    p.learn_and_ask(ADMIN, json!({})).await;
    // Variables of the filters' own list types (and an enum inside a list
    // literal) are compiled too; a single value where a list is declared
    // counts as a list of one, as in the executor.
    const LISTED: &str = "query($s: [OrganizationStatus!], $t: TicketStatus!, $o: [ID!]) {
      organizations(first: 5, filter: {status: $s}) { totalCount nodes { id status } }
      tickets(first: 5, filter: {status: [$t], organizationId: $o}) { totalCount nodes { id status } } }";
    p.learn_and_ask(
        LISTED,
        json!({ "s": ["ACTIVE", "TRIAL"], "t": "OPEN", "o": ["org_1", "org_2"] }),
    )
    .await;
    for variables in [
        json!({ "s": "ACTIVE", "t": "PENDING", "o": "org_1" }),
        json!({ "s": [], "t": "OPEN", "o": null }),
    ] {
        let (_, statements) = p.ask(LISTED, &variables).await;
        assert_eq!(statements, 1, "compiled, for {variables}");
    }
    let deep = p.learn_and_ask(DEEP, json!({ "n": 20 })).await;
    assert!(deep.contains("\"body\""), "the deepest level is reached");
    for n in [1, 100] {
        let (_, statements) = p.ask(DEEP, &json!({ "n": n })).await;
        assert_eq!(statements, 1, "at {n} parents");
    }

    let answer = p
        .learn_and_ask(
            EVERYTHING,
            json!({ "skipFlags": false, "withEdges": true, "first": 4 }),
        )
        .await;
    for field in [
        "\"cursor\"",
        "\"roles\"",
        "\"paidAt\"",
        "\"flags\"",
        "\"endCursor\"",
        // The adjusted rows are in the page.
        ".500+00:00",
        ".123456+00:00",
        r#"AAA \"q\" \\ \n\t\u0001ünï 😀"#,
    ] {
        assert!(answer.contains(field), "{field} in {answer}");
    }
    let variations = [
        json!({ "skipFlags": true, "withEdges": false }),
        // Not given: false for async-graphql's `@include`, whatever the default.
        json!({ "skipFlags": false }),
        json!({ "skipFlags": false, "order": "NAME_DESC", "first": 7 }),
        json!({ "skipFlags": false, "order": "CREATED_AT_DESC", "filter": { "status": ["TRIAL", "SUSPENDED"] } }),
        json!({ "skipFlags": false, "order": "NAME_ASC", "filter": { "search": "a", "planCode": "team" } }),
        json!({ "skipFlags": false, "filter": { "createdAt": { "from": "2020-01-01T00:00:00Z", "before": "2100-01-01" } } }),
        json!({ "skipFlags": false, "first": 0 }),
    ];
    for variables in variations {
        let (_, statements) = p.ask(EVERYTHING, &variables).await;
        assert_eq!(statements, 1, "compiled, for {variables}");
    }

    let ids = p
        .reference
        .query(
            "{ tickets(first: 1, filter: {status: [OPEN, PENDING, SOLVED, CLOSED]}) { nodes { id
                 organization { id } requester { id }
                 messages(first: 1) { nodes { id } } } }
               invoices(first: 1) { nodes { id } }
               staffMembers(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let ticket = &ids["tickets"]["nodes"][0];
    p.learn_and_ask(
        BY_ID,
        json!({
            "org": ticket["organization"]["id"],
            "user": ticket["requester"]["id"],
            "invoice": ids["invoices"]["nodes"][0]["id"],
            "ticket": ticket["id"],
            "staff": ids["staffMembers"]["nodes"][0]["id"],
        }),
    )
    .await;

    let org = ticket["organization"]["id"].clone();
    let answer = p.learn_and_ask(LISTS, json!({ "first": 5 })).await;
    for field in [
        "\"email\"",
        "\"number\"",
        "\"subject\"",
        "\"roles\"",
        "\"cursor\"",
    ] {
        assert!(answer.contains(field), "{field} in {answer}");
    }
    let staff_cursor = p
        .reference
        .query(
            "{ staffMembers(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await["staffMembers"]["pageInfo"]["endCursor"]
        .clone();
    let lists = [
        json!({}),
        json!({ "first": 0 }),
        json!({ "first": 7, "after": staff_cursor,
                "userOrder": "EMAIL_ASC", "userFilter": { "search": "a", "status": ["ACTIVE", "INVITED"] },
                "invoiceOrder": "ISSUED_AT_ASC", "invoiceFilter": { "status": ["OPEN", "PAID"], "currency": "USD" },
                "ticketOrder": "CREATED_AT_ASC", "ticketFilter": { "priority": ["HIGH", "URGENT"], "search": "e" } }),
        json!({ "ticketOrder": "PRIORITY_DESC", "ticketFilter": { "assigneeId": null },
                "userOrder": "EMAIL_DESC", "invoiceFilter": { "status": [] } }),
        json!({ "userOrder": "CREATED_AT_DESC", "userFilter": { "organizationId": org },
                "invoiceFilter": { "organizationId": org, "issuedAt": { "from": "2020-01-01", "before": "2100-01-01T00:00:00Z" } },
                "ticketFilter": { "organizationId": org, "status": ["OPEN", "PENDING", "SOLVED", "CLOSED"],
                                  "createdAt": { "from": "2020-01-01T00:00:00Z" } } }),
    ];
    for variables in lists {
        let (answer, statements) = p.ask(LISTS, &variables).await;
        assert_eq!(statements, 1, "compiled, for {variables}");
        if variables == json!({}) {
            // The default pages have rows (the comparison is not between empty pages).
            assert!(
                answer.contains("\"email\"")
                    && answer.contains("\"number\"")
                    && answer.contains("\"subject\""),
                "{answer}"
            );
        }
    }
    // A page of each list continuing from its cursor.
    let page = p.ask(LISTS, &json!({ "first": 3 })).await.0;
    let page: Value = serde_json::from_str(&page).expect("json");
    let cursors = &page["data"];
    p.learn_and_ask(
        "query Next($u: String, $i: String, $t: String) {
               users(first: 3, after: $u) { nodes { id } }
               invoices(first: 3, after: $i) { nodes { id } }
               tickets(first: 3, after: $t) { totalCount nodes { id } } }",
        json!({
            "u": cursors["users"]["pageInfo"]["endCursor"],
            "i": cursors["invoices"]["pageInfo"]["endCursor"],
            "t": cursors["tickets"]["pageInfo"]["endCursor"],
        }),
    )
    .await;

    let metrics = p.compiled.metrics().await;
    for by in ["compiled", "executor"] {
        let needle = format!("backplane_graphql_answered_total{{by=\"{by}\"}}");
        assert!(metrics.contains(&needle), "{needle} in {metrics}");
    }
}
crate::on_both_databases!(compiled_reads_answer_as_the_executor_does_in_one_statement);

async fn what_is_not_compiled_goes_to_the_executor(backend: Backend) {
    let p = pair(backend).await;
    // Cursors: compiled, the same pages as the executor's, in any order and
    // under a filter; a cursor of another list or order is the executor's
    // error.
    for (order, filter) in [
        ("CREATED_AT_ASC", json!(null)),
        ("NAME_ASC", json!({ "status": "ACTIVE" })),
        ("CREATED_AT_DESC", json!(null)),
    ] {
        let first = p
            .reference
            .query(
                "query($order: OrganizationOrder, $filter: OrganizationFilter) {
                  organizations(first: 3, orderBy: $order, filter: $filter) { pageInfo { endCursor } } }",
                json!({ "order": order, "filter": filter }),
            )
            .await;
        let after = first["organizations"]["pageInfo"]["endCursor"].clone();
        let variables = json!({ "order": order, "filter": filter, "after": after });
        let query = "query Next($order: OrganizationOrder, $filter: OrganizationFilter, $after: String) {
          organizations(first: 3, orderBy: $order, filter: $filter, after: $after) {
            totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name createdAt } }
            nodes { users(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }";
        p.ask(query, &variables).await;
        let (answer, statements) = p.ask(query, &variables).await;
        assert_eq!(statements, 1, "compiled with a cursor: {answer}");
    }
    let foreign = p
        .reference
        .query(
            "{ invoices(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await["invoices"]["pageInfo"]["endCursor"]
        .clone();
    let query = "query($after: String) { organizations(first: 2, after: $after) { nodes { id users(first: 1) { nodes { id } } } } }";
    for after in [foreign, json!("not a cursor")] {
        let expected = p.same_answer(query, &json!({ "after": after })).await;
        assert!(expected.contains("BAD_USER_INPUT"), "{expected}");
    }

    // Nested pages from a cursor (every parent's page continues after the same
    // row; a parent with nothing after it still counts its whole list).
    let page = p
        .reference
        .query(
            "{ organizations(first: 1) { nodes { users(first: 1) { pageInfo { endCursor } } } } }",
            json!({}),
        )
        .await;
    let user_after = page["organizations"]["nodes"][0]["users"]["pageInfo"]["endCursor"].clone();
    let query = "query UsersAfter($after: String) { organizations(first: 5) { nodes {
        users(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } } } }";
    p.learn_and_ask(query, json!({ "after": user_after })).await;

    // Lists the compiled path does not cover, and introspection.
    let documents = [
        (
            "{ plans { code name priceCents } userByEmail(email: \"nobody@example.com\") { id } }",
            json!({}),
        ),
        (
            "{ viewer { subject roles } organizations(first: 1) { nodes { id users(first: 1) { nodes { id } } } } }",
            json!({}),
        ),
        ("{ __schema { queryType { name } } }", json!({})),
    ];
    for (query, variables) in documents {
        p.ask(query, &variables).await;
        let (_, statements) = p.ask(query, &variables).await;
        assert_ne!(statements, 1, "{query} is not compiled");
    }
    // A bad value for a document already compiled gets the executor's error.
    p.learn_and_ask(DEEP, json!({ "n": 3 })).await;
    for variables in [json!({ "n": "three" }), json!({ "n": 100_000 }), json!({})] {
        let expected = p.same_answer(DEEP, &variables).await;
        assert!(expected.contains("\"errors\""), "{expected}");
    }
}
crate::on_both_databases!(what_is_not_compiled_goes_to_the_executor);

async fn compiled_reads_are_audited_as_executed_ones(backend: Backend) {
    let p = pair(backend).await;
    let query = "query Sensitive($slug: String!) {
      organizationBySlug(slug: $slug) { name monthlyCostCents users(first: 2) { nodes { email } } }
      organizations(first: 2) { nodes { internalFlags { vip }
        tickets(first: 1) { nodes { internalNotes } } } }
    }";
    // Present: every sensitive field is resolved. Missing: no organization,
    // so neither its cost nor its users' emails are.
    let first = p
        .reference
        .query("{ organizations(first: 1) { nodes { slug } } }", json!({}))
        .await;
    let slug = first["organizations"]["nodes"][0]["slug"].clone();
    p.learn_and_ask(query, json!({ "slug": slug })).await;
    p.ask(query, &json!({ "slug": "no-such-organization" }))
        .await;

    let events = p
        .reference
        .query(
            "{ auditEvents(first: 50, filter: {operationName: \"Sensitive\"}) { nodes { sensitiveFields outcome } } }",
            json!({}),
        )
        .await;
    let events = events["auditEvents"]["nodes"].as_array().expect("events");
    let fields: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut f: Vec<String> = e["sensitiveFields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|v| v.as_str().expect("name").to_owned())
                .collect();
            f.sort();
            f
        })
        .collect();
    // Newest first, each pair compiled server then reference: the missing
    // organization, then the present one (compiled statement, then the
    // compiled server's executor).
    assert_eq!(fields.len(), 6, "{events:?}");
    for pair in fields.chunks(2) {
        assert_eq!(pair[0], pair[1], "the same record both ways");
    }
    let has = |f: &Vec<String>, name: &str| f.iter().any(|x| x == name);
    for present in &fields[2..] {
        for name in [
            "Organization.monthlyCostCents",
            "User.email",
            "Organization.internalFlags",
        ] {
            assert!(has(present, name), "{name} in {present:?}");
        }
    }
    assert!(!has(&fields[0], "Organization.monthlyCostCents"));
    assert!(!has(&fields[0], "User.email"));
    assert!(has(&fields[0], "Organization.internalFlags"));
    assert!(events.iter().all(|e| e["outcome"] == "OK"));
}
crate::on_both_databases!(compiled_reads_are_audited_as_executed_ones);

/// A burst of first sights of one document (an admin page opened by many
/// people at once) runs it on the executor once, or twice when two requests
/// look at the same moment: the others wait for its verdict and are compiled,
/// one statement each.
async fn a_burst_of_first_sights_runs_the_executor_once(backend: Backend) {
    const BURST: u64 = 16;
    let app = crate::helpers::spawn_app(backend).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    app.query("{ viewer { subject } }", json!({})).await;
    let shape = "{ organizations(first: 5) { nodes { id \
                 users(first: 2) { nodes { id organization { name } } } } } }";
    // What the executor sends for this shape: a document's first sight.
    let (executor, (status, _)) = app
        .statements_during(app.graphql_text(&token, &format!("query Once {shape}"), json!({})))
        .await;
    assert_eq!(status, 200);
    assert!(executor >= 3, "one statement per level: {executor}");
    let burst = format!("query Burst {shape}");
    let (statements, answers) = app
        .statements_during(futures::future::join_all(
            (0..BURST).map(|_| app.graphql_text(&token, &burst, json!({}))),
        ))
        .await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer, &answers[0].1);
    }
    assert!(
        statements <= 2 * executor + (BURST - 2),
        "{statements} statements for {BURST} first sights; the executor sends {executor} \
         for one, the compiled path 1"
    );
}
crate::on_both_databases!(a_burst_of_first_sights_runs_the_executor_once);
