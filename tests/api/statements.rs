//! One SQL statement per level of nesting, whatever the page size: counted from
//! the statements the server actually sends.
//!
//! These measure async-graphql's executor with our DataLoaders, so compiled
//! reads are off: on PostgreSQL a read they cover is one statement in all
//! (`compiled.rs`), and the executor is what answers everything else.

use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app_configured};
use crate::on_both_databases;

/// Eleven levels: organizations → users → organization → invoices → lines →
/// invoice → organization → tickets → requester → tickets → (assignee, messages).
pub const DEEP: &str = "query Deep($n: Int!) {
  organizations(first: $n, filter: {status: ACTIVE}) { nodes { id
    users(first: 2) { nodes { id
      organization { id
        invoices(first: 1) { nodes { number
          lines(first: 1) { nodes { description
            invoice { id
              organization { slug
                tickets(first: 1) { nodes { subject
                  requester { email
                    tickets(first: 1) { nodes { id
                      assignee { name }
                      messages(first: 1) { nodes { body } }
                    } }
                  }
                } }
              }
            }
          } }
        } }
      }
    } }
  } }
}";

/// A server whose executor answers every read.
async fn executor_only(backend: Backend) -> TestApp {
    spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
        c.compile_reads = false;
    })
    .await
}

/// Statements per level above: one each, two on the last (assignee, messages).
const DEEP_STATEMENTS: u64 = 12;

async fn nested_queries_cost_one_statement_per_level(backend: Backend) {
    let app = executor_only(backend).await;
    // The first request of a principal records it in the staff directory.
    app.query("{ viewer { subject } }", json!({})).await;
    let mut counts = Vec::new();
    for n in [10, 100] {
        let (count, data) = app
            .statements_during(app.query(DEEP, json!({ "n": n })))
            .await;
        let orgs = data["organizations"]["nodes"].as_array().expect("nodes");
        assert_eq!(orgs.len(), n, "the seed has {n} active organizations");
        // The deepest level really was reached.
        let reached = orgs.iter().any(|o| {
            o["users"]["nodes"][0]["organization"]["invoices"]["nodes"][0]["lines"]["nodes"][0]
                ["invoice"]["organization"]["tickets"]["nodes"][0]["requester"]["tickets"]["nodes"]
                [0]["messages"]["nodes"][0]["body"]
                .is_string()
        });
        assert!(reached, "no organization reached the last level");
        counts.push(count);
    }
    assert_eq!(
        counts,
        vec![DEEP_STATEMENTS, DEEP_STATEMENTS],
        "statements at 10 and 100 parents"
    );
}
on_both_databases!(nested_queries_cost_one_statement_per_level);

async fn per_parent_pages_with_totals_are_one_statement(backend: Backend) {
    let app = executor_only(backend).await;
    app.query("{ viewer { subject } }", json!({})).await;
    for n in [10, 100] {
        let (count, data) = app
            .statements_during(app.query(
                "query($n: Int!) { organizations(first: $n) { totalCount nodes {
                    users(first: 10) { totalCount nodes { id } }
                    invoices(first: 10) { totalCount nodes { id } }
                    tickets(first: 10) { totalCount nodes { id } }
                    plan { code } subscription { seats }
                } } }",
                json!({ "n": n }),
            ))
            .await;
        assert_eq!(
            data["organizations"]["nodes"].as_array().map(Vec::len),
            Some(n)
        );
        // organizations, users, invoices, tickets, and the subscription with
        // its plan.
        assert_eq!(count, 5, "at {n} parents");
        let nodes = data["organizations"]["nodes"].as_array().expect("nodes");
        assert!(
            nodes
                .iter()
                .all(|o| o["plan"]["code"].is_string() == o["subscription"]["seats"].is_number()),
            "a plan exactly where there is a subscription"
        );
        assert!(nodes.iter().any(|o| o["plan"]["code"].is_string()));
    }
}
on_both_databases!(per_parent_pages_with_totals_are_one_statement);
