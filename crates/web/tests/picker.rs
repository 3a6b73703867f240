//! The request form's catalog picker as its script calls it: the requestable tables, searched
//! and paged, with columns, types and the sensitive ones; and what the policy makes of what is
//! picked before anything is submitted. Real router, real PostgreSQL, a FakeCloud.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::*;

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_picker_lists_requestable_tables_with_their_columns(pool: PgPool) {
    let app = app(pool).await;
    let anonymous = Browser::new(&app);
    let res = anonymous.get("/requests/new/tables").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);

    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;
    let page = alice.get("/requests/new").await;
    assert!(
        page.has(r#"script[src="/static/picker.js"]"#),
        "{}",
        page.body
    );
    // Hidden until the script shows it: without JavaScript, the form is as it was.
    assert!(page.has("#picker[hidden]"), "{}", page.body);
    let script = alice.get("/static/picker.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("/requests/new/tables"));

    let all = alice.get("/requests/new/tables").await.json();
    let names: Vec<String> = all["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["database"].as_str().unwrap(),
                t["table"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(all["total"], 3, "{all}");
    for name in ["sales.orders", "sales.customers", "hr.employees"] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    assert_eq!(all["next_offset"], serde_json::Value::Null);

    // Searched by part of `database.table`, without case.
    let found = alice.get("/requests/new/tables?q=EMPLOY").await.json();
    assert_eq!(found["total"], 1, "{found}");
    let employees = &found["tables"][0];
    assert_eq!(employees["rules"], json!(["hr"]));
    let salary = employees["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "salary")
        .unwrap();
    assert_eq!(salary["sensitive"], true, "{employees}");
    assert!(salary["type"].is_string());
    let name = employees["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "name")
        .unwrap();
    assert_eq!(name["sensitive"], false);
    // The partition keys are columns too.
    let orders = alice
        .get("/requests/new/tables?q=sales.orders")
        .await
        .json();
    assert!(
        orders["tables"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "dt"),
        "{orders}"
    );

    // Paged.
    let rest = alice.get("/requests/new/tables?offset=2").await.json();
    assert_eq!(rest["tables"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["offset"], 2);
    let none = alice
        .get("/requests/new/tables?q=nothing-like-this")
        .await
        .json();
    assert_eq!(none["total"], 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_preview_says_what_the_policy_makes_of_the_tables_picked(pool: PgPool) {
    let app = app(pool).await;
    let alice = Browser::new(&app);
    alice.sign_in("alice@example.com", "analysts").await;

    let res = alice
        .get("/requests/new/preview?resources=hr.employees%3A+name%2C+salary%0Asales.orders")
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let p = res.json();
    assert_eq!(
        p["sensitive_columns"],
        json!(["hr.employees.salary"]),
        "{p}"
    );
    let approvals = p["approvals"].as_array().unwrap();
    let groups: Vec<&serde_json::Value> = approvals.iter().map(|a| &a["groups"]).collect();
    assert!(groups.contains(&&json!(["hr-owners"])), "{p}");
    assert!(groups.contains(&&json!(["data-owners"])), "{p}");
    assert!(approvals.iter().all(|a| a["count"] == 1), "{p}");
    assert_eq!(p["auto_approved"], false);
    assert_eq!(p["min_duration"], "15m");
    assert_eq!(p["max_duration"], "8h");
    assert_eq!(p["scan_cutoff"], "10GB");

    // The duration asked for is the one evaluated; none asked, the one the policy proposes.
    let asked = alice
        .get("/requests/new/preview?resources=sales.orders&duration=2h")
        .await
        .json();
    assert_eq!(asked["duration"], "2h", "{asked}");
    let proposed = alice
        .get("/requests/new/preview?resources=sales.orders")
        .await
        .json();
    assert_eq!(
        proposed["duration"], proposed["default_duration"],
        "{proposed}"
    );

    // What the form would refuse, the preview refuses with the form's own message, and tells
    // nothing of tables nobody may ask for.
    for (resources, says) in [
        ("nosuch.table", "is not found or not requestable"),
        ("sales.orders%3A+nosuch", "has no column `nosuch`"),
        ("", "table"),
    ] {
        let res = alice
            .get(&format!("/requests/new/preview?resources={resources}"))
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{resources}: {}",
            res.body
        );
        let e = res.json();
        assert_eq!(e["code"], "InvalidInput", "{e}");
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{resources}: {e}"
        );
    }
    let res = alice
        .get("/requests/new/preview?resources=sales.orders&duration=soon")
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
}
