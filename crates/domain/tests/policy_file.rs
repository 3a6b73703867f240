//! The approval policy file: parsing (good and bad files, with the exact messages an admin
//! sees), matching, the strictest combination across rules, distinct approvals, sensitive
//! columns, auto-approval, break-glass and extension caps.

use lakegate_domain::ResourceSpec;
use lakegate_domain::policy::Policy;
use lakegate_domain::policy_file::{
    Approver, Evaluation, PolicyFile, RequestFacts, Requirement, SensitiveColumn, TableFacts,
};
use time::Duration;

/// A policy exercising every feature; line numbers matter to no test below.
const POLICY: &str = r#"
admin_group = "lakegate-admins"

[defaults]
approver_groups = ["data-owners"]
max_duration = "8h"
query_scan_cutoff = "10GB"

[[rule]]
name = "sales"
match = ["Sales.*"]
approver_groups = ["sales-owners"]
max_duration = "4h"
scan_budget = "1TB"
sensitive_columns = ["email"]
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }
break_glass = { groups = ["oncall"], max_duration = "1h" }

[[rule]]
name = "hr"
match = ["hr.*"]
approver_groups = ["hr-owners"]
approvals = 2
min_duration = "30m"
max_duration = "2h"
query_scan_cutoff = "1GB"
sensitive_columns = ["salary", "national_*"]
sensitive_approver_groups = ["privacy"]
break_glass = { groups = ["oncall"], max_duration = "30m" }

[[rule]]
name = "finance-orders"
match = ["sales.ord?rs", "*.ledger"]
approver_groups = ["finance"]
auto_approve = { requester_groups = ["analysts", "finance-analysts"] }
"#;

fn policy() -> PolicyFile {
    PolicyFile::parse(POLICY, "policy.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

/// `tables` are `(database, table, columns covered)`.
fn facts(
    requester: &str,
    groups: &[&str],
    duration: Duration,
    tables: &[(&str, &str, &[&str])],
) -> RequestFacts {
    RequestFacts {
        requester: requester.to_owned(),
        requester_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        agent: false,
        duration,
        tables: tables
            .iter()
            .map(|(db, t, cols)| TableFacts {
                database: (*db).to_owned(),
                table: (*t).to_owned(),
                columns: cols.iter().map(|c| (*c).to_owned()).collect(),
            })
            .collect(),
    }
}

fn approver(subject: &str, groups: &[&str]) -> Approver {
    Approver {
        subject: subject.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const ORDERS: (&str, &str, &[&str]) = ("sales", "orders", &["order_id", "amount"]);
const CUSTOMERS_ALL: (&str, &str, &[&str]) = (
    "sales",
    "customers",
    &["customer_id", "name", "email", "country"],
);
const CUSTOMERS_NO_EMAIL: (&str, &str, &[&str]) =
    ("sales", "customers", &["customer_id", "country"]);
const EMPLOYEES_PLAIN: (&str, &str, &[&str]) = ("hr", "employees", &["employee_id", "department"]);
const LEADS: (&str, &str, &[&str]) = ("marketing", "leads", &["lead_id"]);

// ---------------------------------------------------------------------------------------------
// Parsing

#[test]
fn parses_a_good_file() {
    let p = policy();
    assert_eq!(p.admin_group(), Some("lakegate-admins"));
    assert_eq!(p.file_name(), "policy.toml");
    let d = p.defaults();
    assert_eq!(d.approver_groups, ["data-owners"]);
    assert_eq!(d.approvals, 1);
    assert_eq!(d.min_duration, mins(15), "built-in minimum");
    assert_eq!(d.default_duration, hours(1), "built-in default");
    assert_eq!(d.max_duration, hours(8));
    assert_eq!(d.scan_cutoff_bytes, 10_000_000_000);
    assert_eq!(d.scan_budget_bytes, None);

    let names: Vec<&str> = p.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["sales", "hr", "finance-orders"]);
    let sales = &p.rules()[0];
    assert_eq!(sales.patterns, ["sales.*"], "patterns are lower-cased");
    assert_eq!(sales.line, 9);
    assert_eq!(sales.settings.approvals, 1, "inherited");
    assert_eq!(sales.settings.scan_budget_bytes, Some(1_000_000_000_000));
    assert_eq!(
        sales.settings.scan_cutoff_bytes, 10_000_000_000,
        "inherited"
    );
    assert_eq!(sales.auto_approve.as_ref().unwrap().max_duration, hours(2));
    let hr = &p.rules()[1];
    assert_eq!(hr.settings.approvals, 2);
    assert_eq!(
        hr.settings.default_duration,
        hours(1),
        "inherited, within 30m..2h"
    );
    assert_eq!(hr.sensitive_approver_groups, ["privacy"]);
    let fin = &p.rules()[2];
    assert_eq!(
        fin.auto_approve.as_ref().unwrap().max_duration,
        hours(8),
        "an auto_approve without max_duration goes up to the rule's maximum"
    );
    assert_eq!(
        fin.auto_approve.as_ref().unwrap().requester_groups,
        ["analysts", "finance-analysts"]
    );
}

#[test]
fn inherited_default_duration_adapts_to_a_rule_bounds() {
    let p = PolicyFile::parse(
        "[defaults]\napprover_groups = [\"x\"]\ndefault_duration = \"2h\"\n\n[[rule]]\nname = \"short\"\nmatch = [\"a.b\"]\nmax_duration = \"30m\"\n",
        "p.toml",
    )
    .unwrap();
    assert_eq!(p.rules()[0].settings.default_duration, mins(30));
}

#[test]
fn the_example_policy_parses_and_behaves_as_its_comments_say() {
    let text = include_str!("../../../policy.example.toml");
    let p = PolicyFile::parse(text, "policy.example.toml")
        .unwrap_or_else(|e| panic!("the shipped example must parse: {e}"));
    assert_eq!(p.admin_group(), Some("lakegate-admins"));
    assert_eq!(p.rules().len(), 3);

    // The sample catalog: an analyst's short look at orders is approved at once ...
    let orders = facts(
        "ann",
        &["analysts"],
        hours(1),
        &[(
            "sales",
            "orders",
            &["order_id", "customer_id", "amount", "status"],
        )],
    );
    assert!(p.evaluate(&orders).auto_approval.allowed);
    // ... all of customers includes email, so people decide ...
    let customers = facts(
        "ann",
        &["analysts"],
        hours(1),
        &[(
            "sales",
            "customers",
            &["customer_id", "name", "email", "country"],
        )],
    );
    let e = p.evaluate(&customers);
    assert!(!e.auto_approval.allowed);
    assert_eq!(e.sensitive_columns.len(), 1);
    // ... and HR salaries need two HR owners and a privacy officer.
    let employees = facts(
        "ann",
        &["analysts"],
        hours(1),
        &[(
            "hr",
            "employees",
            &["employee_id", "name", "department", "salary", "national_id"],
        )],
    );
    let e = p.evaluate(&employees);
    let cols: Vec<String> = e
        .sensitive_columns
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(cols, ["hr.employees.salary", "hr.employees.national_id"]);
    assert_eq!(
        e.approval_status(&[]).missing,
        [
            "2 more approvals from hr-data-owners (rule hr)",
            "1 more approval from privacy-officers (sensitive columns, rule hr)"
        ]
    );
    assert_eq!(e.max_duration.value, hours(4));
    assert_eq!(e.scan_cutoff_bytes.value, 1_000_000_000);
    // Console statements on HR tables need a LIMIT; on sales tables they do not.
    assert_eq!(e.require_limit.as_deref(), Some("hr"));
    assert_eq!(p.evaluate(&orders).require_limit, None);
}

#[test]
fn require_limit_is_inherited_and_any_applying_rule_turns_it_on() {
    let text = "[defaults]\napprover_groups = [\"owners\"]\nrequire_limit = true\n\n\
                [[rule]]\nname = \"sales\"\nmatch = [\"sales.*\"]\nrequire_limit = false\n\n\
                [[rule]]\nname = \"hr\"\nmatch = [\"hr.*\"]\n";
    let p = PolicyFile::parse(text, "policy.toml").unwrap();
    let one = |db: &str| facts("ann", &[], hours(1), &[(db, "t", &["a"])]);
    // Unmatched tables fall under the defaults, which require it.
    assert_eq!(
        p.evaluate(&one("other")).require_limit.as_deref(),
        Some("defaults")
    );
    // A rule may turn it off for its tables ...
    assert_eq!(p.evaluate(&one("sales")).require_limit, None);
    // ... and one that leaves the key out inherits it.
    assert_eq!(p.evaluate(&one("hr")).require_limit.as_deref(), Some("hr"));
    // A request spanning both gets the stricter.
    let both = facts(
        "ann",
        &[],
        hours(1),
        &[("sales", "t", &["a"]), ("hr", "t", &["a"])],
    );
    assert_eq!(p.evaluate(&both).require_limit.as_deref(), Some("hr"));

    let bad = PolicyFile::parse(
        "[defaults]\napprover_groups = [\"owners\"]\nrequire_limit = \"yes\"\n",
        "policy.toml",
    )
    .unwrap_err();
    assert!(bad.to_string().contains("policy.toml:3"), "{bad}");
    // Without a policy file, nothing requires it.
    let simple = PolicyFile::from_policy(
        &Policy::new("owners", hours(1) / 4, hours(8), 10_000_000_000).unwrap(),
    );
    assert_eq!(simple.evaluate(&one("sales")).require_limit, None);
}

#[test]
fn refuses_bad_files_with_messages_that_say_where_and_why() {
    const D: &str = "[defaults]\napprover_groups = [\"data-owners\"]\n";
    let rule = |body: &str| format!("{D}\n[[rule]]\nname = \"hr\"\nmatch = [\"hr.*\"]\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            String::new(),
            "policy.toml: [defaults] is missing: it names the approver groups for tables no rule matches",
        ),
        (
            "[defaults]\napprover_group = [\"x\"]\n".into(),
            "policy.toml:2: [defaults]: unknown key \"approver_group\" (did you mean approver_groups?)",
        ),
        (
            "[defaults]\nmin_duration = \"1h\"\n".into(),
            "policy.toml:1: [defaults]: approver_groups is missing; name the groups whose members approve requests for tables no rule matches",
        ),
        (
            format!("{D}approvals = 0\n"),
            "policy.toml:3: [defaults]: approvals must be between 1 and 10, not 0",
        ),
        (
            format!("{D}approvals = 11\n"),
            "policy.toml:3: [defaults]: approvals must be between 1 and 10, not 11",
        ),
        (
            format!("{D}approvals = \"two\"\n"),
            "policy.toml:3: [defaults]: approvals: expected a whole number, found string \"two\"",
        ),
        (
            format!("{D}min_duration = \"9h\"\n"),
            "policy.toml:3: [defaults]: min_duration 9h is longer than max_duration 8h (lakegate's default)",
        ),
        (
            format!("{D}min_duration = \"30s\"\n"),
            "policy.toml:3: [defaults]: min_duration 30s is shorter than the shortest allowed, 1m",
        ),
        (
            format!("{D}max_duration = \"8 hours\"\n"),
            "policy.toml:3: [defaults]: max_duration: `8 hours` is not a duration: use a number with a unit, like 30m, 2h or 1h30m",
        ),
        (
            format!("{D}max_duration = 8\n"),
            "policy.toml:3: [defaults]: max_duration: expected a string in quotes, found integer 8",
        ),
        (
            format!("{D}query_scan_cutoff = \"5MB\"\n"),
            "policy.toml:3: [defaults]: query_scan_cutoff 5MB is below Athena's minimum of 10MB",
        ),
        (
            format!("{D}query_scan_cutoff = \"10XB\"\n"),
            "policy.toml:3: [defaults]: query_scan_cutoff: `10XB` is not a size: use a number with a unit, like 500MB, 10GB or 1TB",
        ),
        (
            format!("{D}scan_budget = \"5GB\"\n"),
            "policy.toml:3: [defaults]: scan_budget 5GB is smaller than query_scan_cutoff 10GB (lakegate's default)",
        ),
        (
            format!("{D}auto_approve = {{ requester_groups = [\"a\"] }}\n"),
            "policy.toml:3: [defaults]: unknown key \"auto_approve\" (auto_approve can only be set in a [[rule]])",
        ),
        (
            format!("{D}approver_groups = [\"x\"]\n"),
            "policy.toml:3: duplicate key \"approver_groups\"",
        ),
        (
            "[defaults]\napprover_groups = [\"x\"\n".into(),
            "policy.toml:2: unclosed array, expected `]`",
        ),
        (
            "defaults = 3\n".into(),
            "policy.toml:1: defaults: expected a table, found integer 3",
        ),
        (
            format!("admin_group = \"\"\n{D}"),
            "policy.toml:1: admin_group is empty",
        ),
        (
            format!("{D}\n[[rules]]\nname = \"hr\"\n"),
            "policy.toml:4: unknown key \"rules\" (did you mean rule?)",
        ),
        (
            rule("max_duration = \"10d\""),
            "policy.toml:7: rule \"hr\": max_duration 10d is longer than the limit of 7d",
        ),
        (
            rule("max_duration = \"10m\""),
            "policy.toml:7: rule \"hr\": max_duration 10m is shorter than min_duration 15m (from [defaults])",
        ),
        (
            rule("max_duration = \"4h\"\ndefault_duration = \"9h\""),
            "policy.toml:8: rule \"hr\": default_duration 9h is longer than max_duration 4h",
        ),
        (
            rule("approver_groups = []"),
            "policy.toml:7: rule \"hr\": approver_groups is empty; name at least one group",
        ),
        (
            rule("approver_groups = [\"hr-owners\", \" \"]"),
            "policy.toml:7: rule \"hr\": approver_groups: a group name is empty",
        ),
        (
            rule("owners = [\"x\"]"),
            "policy.toml:7: rule \"hr\": unknown key \"owners\" (the keys here are name, match, approver_groups, approvals, default_duration, min_duration, max_duration, query_scan_cutoff, scan_budget, require_limit, sensitive_columns, sensitive_approver_groups, auto_approve, break_glass, notify)",
        ),
        (
            format!(
                "{D}scan_budget = \"1TB\"\n\n[[rule]]\nname = \"big\"\nmatch = [\"a.*\"]\nquery_scan_cutoff = \"2TB\"\n"
            ),
            "policy.toml:8: rule \"big\": query_scan_cutoff 2TB is larger than scan_budget 1TB (from [defaults])",
        ),
        (
            format!("{}[[rule]]\nname = \"HR\"\nmatch = [\"x.*\"]\n", rule("")),
            "policy.toml:9: rule \"HR\": the name is already used by the rule on line 4",
        ),
        (
            format!("{D}\n[[rule]]\nmatch = [\"hr.*\"]\n"),
            "policy.toml:4: rule #1: missing key \"name\" (every rule needs a unique name)",
        ),
        (
            format!("{D}\n[[rule]]\nname = \" \"\nmatch = [\"hr.*\"]\n"),
            "policy.toml:5: rule #1: name is empty",
        ),
        (
            format!("{D}\n[[rule]]\nname = \"Defaults\"\nmatch = [\"hr.*\"]\n"),
            "policy.toml:5: rule #1: the name \"defaults\" is reserved for [defaults]; choose another",
        ),
        (
            format!("{D}\n[[rule]]\nname = \"hr\"\nmatch = []\n"),
            "policy.toml:6: rule \"hr\": match is empty; list the tables this rule covers, like [\"sales.*\"]",
        ),
        (
            format!("{D}\n[[rule]]\nname = \"hr\"\nmatch = [\"hr.*\", \"sales\"]\n"),
            "policy.toml:6: rule \"hr\": match pattern \"sales\" must look like database.table, like \"sales.*\" or \"*.customers\"",
        ),
        (
            format!("{D}\n[[rule]]\nname = \"hr\"\nmatch = [\"hr.emp-loyees\"]\n"),
            "policy.toml:6: rule \"hr\": match pattern \"hr.emp-loyees\" may use only letters, digits, _ and the wildcards * and ?",
        ),
        (
            rule("sensitive_columns = [\"employees.salary\"]"),
            "policy.toml:7: rule \"hr\": sensitive_columns pattern \"employees.salary\" names a column, not a table: leave out the table, like \"salary\"",
        ),
        (
            rule("sensitive_approver_groups = [\"privacy\"]"),
            "policy.toml:7: rule \"hr\": sensitive_approver_groups is set but sensitive_columns is empty, so it would never apply",
        ),
        (
            rule(
                "approver_groups = [\"hr-owners\"]\nsensitive_columns = [\"salary\"]\nsensitive_approver_groups = [\"hr-owners\"]",
            ),
            "policy.toml:9: rule \"hr\": sensitive_approver_groups is the same as approver_groups, so it asks for nothing more: name another group, or leave it out and sensitive columns only rule out auto-approval",
        ),
        (
            rule("auto_approve = { requester_groups = [\"analysts\"], max_duration = \"10h\" }"),
            "policy.toml:7: rule \"hr\": auto_approve.max_duration 10h is longer than the rule's max_duration 8h",
        ),
        (
            rule("auto_approve = { requester_groups = [] }"),
            "policy.toml:7: rule \"hr\": auto_approve.requester_groups is empty; name at least one group",
        ),
        (
            rule("auto_approve = { requester_groups = [\"a\"], max = \"1h\" }"),
            "policy.toml:7: rule \"hr\": unknown key \"max\" (did you mean max_duration?)",
        ),
        (
            rule("break_glass = { max_duration = \"1h\" }"),
            "policy.toml:7: rule \"hr\": missing key \"groups\" (the groups that may use break-glass)",
        ),
        (
            rule("notify = { slack_channel = \"sales access\" }"),
            "policy.toml:7: rule \"hr\": notify.slack_channel must be a channel name or id, like \"#data-access\" or \"C0123456789\"",
        ),
        (
            rule("notify = { webhooks = [\"ftp://hooks.example.com/x\"] }"),
            "policy.toml:7: rule \"hr\": notify.webhooks: each must be an http:// or https:// URL",
        ),
        (
            rule("notify = { slack = \"#x\" }"),
            "policy.toml:7: rule \"hr\": unknown key \"slack\" (did you mean slack_channel?)",
        ),
        (
            rule("[rule.break_glass]\ngroups = [\"oncall\"]\nmax_duration = \"5m\""),
            "policy.toml:9: rule \"hr\": break_glass.max_duration 5m is shorter than the rule's min_duration 15m, so it could never apply",
        ),
    ];
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        match PolicyFile::parse(text, "policy.toml") {
            Ok(_) => failures.push(format!("accepted:\n{text}\nwanted: {want}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{text}\n  got:    {e}\n  wanted: {want}"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn error_fields_are_there_for_programs_too() {
    let e = PolicyFile::parse(
        "[defaults]\napprover_groups = [\"x\"]\n\n[[rule]]\nname = \"hr\"\nmatch = [\"hr.*\"]\napprovals = 0\n",
        "/etc/lakegate/policy.toml",
    )
    .unwrap_err();
    assert_eq!(e.file, "/etc/lakegate/policy.toml");
    assert_eq!(e.line, Some(7));
    assert_eq!(e.section.as_deref(), Some("rule \"hr\""));
    assert_eq!(e.message, "approvals must be between 1 and 10, not 0");
}

// ---------------------------------------------------------------------------------------------
// Matching

#[test]
fn tables_match_rules_by_glob_case_insensitively_and_fall_back_to_defaults() {
    let p = policy();
    let cases: &[(&str, &str, &[&str])] = &[
        ("sales", "orders", &["sales", "finance-orders"]),
        ("SALES", "Customers", &["sales"]),
        ("sales", "ordxrs", &["sales", "finance-orders"]),
        ("sales", "orderss", &["sales"]),
        ("gl", "ledger", &["finance-orders"]),
        ("gl", "ledgers", &["defaults"]),
        ("hr", "employees", &["hr"]),
        ("hrx", "employees", &["defaults"]),
        ("marketing", "leads", &["defaults"]),
    ];
    for (db, table, want) in cases {
        let e = p.evaluate(&facts("ann", &[], hours(1), &[(db, table, &["c"])]));
        assert_eq!(e.tables.len(), 1);
        assert_eq!(e.tables[0].rules, strings(want), "{db}.{table}");
        assert_eq!(e.tables[0].database, db.to_ascii_lowercase());
    }
}

#[test]
fn a_request_with_no_tables_is_held_to_the_defaults() {
    let e = policy().evaluate(&facts("ann", &["analysts", "oncall"], hours(1), &[]));
    assert_eq!(e.auto_approval.reasons, ["the request names no table"]);
    assert!(!e.break_glass.allowed);
    assert_eq!(e.requirements.len(), 1);
    assert_eq!(e.requirements[0].groups, ["data-owners"]);
    assert!(!e.approval_status(&[]).satisfied);
}

// ---------------------------------------------------------------------------------------------
// The strictest combination

#[test]
fn a_request_spanning_rules_gets_the_strictest_combination() {
    let p = policy();
    let e = p.evaluate(&facts(
        "ann",
        &["analysts"],
        hours(1),
        &[ORDERS, EMPLOYEES_PLAIN, LEADS],
    ));
    assert_eq!(
        e.requirements,
        [
            Requirement {
                groups: strings(&["sales-owners"]),
                count: 1,
                rules: strings(&["sales"]),
                sensitive: false
            },
            Requirement {
                groups: strings(&["hr-owners"]),
                count: 2,
                rules: strings(&["hr"]),
                sensitive: false
            },
            Requirement {
                groups: strings(&["finance"]),
                count: 1,
                rules: strings(&["finance-orders"]),
                sensitive: false
            },
            Requirement {
                groups: strings(&["data-owners"]),
                count: 1,
                rules: strings(&["defaults"]),
                sensitive: false
            },
        ]
    );
    assert_eq!(
        (e.min_duration.value, e.min_duration.rule.as_str()),
        (mins(30), "hr")
    );
    assert_eq!(
        (e.max_duration.value, e.max_duration.rule.as_str()),
        (hours(2), "hr")
    );
    assert_eq!(e.default_duration, hours(1));
    assert_eq!(
        (e.scan_cutoff_bytes.value, e.scan_cutoff_bytes.rule.as_str()),
        (1_000_000_000, "hr")
    );
    let budget = e.scan_budget_bytes.unwrap();
    assert_eq!(
        (budget.value, budget.rule.as_str()),
        (1_000_000_000_000, "sales")
    );

    // One rule alone keeps its own, looser limits.
    let alone = p.evaluate(&facts("ann", &[], hours(1), &[ORDERS]));
    assert_eq!(alone.max_duration.value, hours(4));
    assert_eq!(alone.min_duration.value, mins(15));
    assert_eq!(alone.scan_cutoff_bytes.value, 10_000_000_000);
    assert_eq!(
        p.evaluate(&facts("ann", &[], hours(1), &[LEADS]))
            .scan_budget_bytes,
        None
    );
}

#[test]
fn rules_with_the_same_approvers_share_one_requirement_at_the_higher_count() {
    let p = PolicyFile::parse(
        r#"
[defaults]
approver_groups = ["owners"]
[[rule]]
name = "a"
match = ["a.*"]
approvals = 2
[[rule]]
name = "b"
match = ["b.*"]
approvals = 3
"#,
        "p.toml",
    )
    .unwrap();
    let e = p.evaluate(&facts(
        "ann",
        &[],
        hours(1),
        &[("a", "t", &["c"]), ("b", "t", &["c"])],
    ));
    assert_eq!(
        e.requirements,
        [Requirement {
            groups: strings(&["owners"]),
            count: 3,
            rules: strings(&["a", "b"]),
            sensitive: false
        }]
    );
    assert_eq!(
        e.approval_status(&[]).missing,
        ["3 more approvals from owners (rule a, rule b)"]
    );
}

#[test]
fn durations_are_checked_against_the_combined_bounds() {
    let p = policy();
    let e = p.evaluate(&facts("ann", &[], hours(1), &[ORDERS, EMPLOYEES_PLAIN]));
    let cases = [
        (mins(30), Ok(())),
        (hours(2), Ok(())),
        (
            mins(29),
            Err(
                "the duration must be between 30m and 2h; you asked for 29m (the minimum comes from rule hr)",
            ),
        ),
        (
            hours(3),
            Err(
                "the duration must be between 30m and 2h; you asked for 3h (the maximum comes from rule hr)",
            ),
        ),
    ];
    for (d, want) in cases {
        assert_eq!(
            e.check_duration(d).map_err(|e| e.0),
            want.map_err(str::to_owned),
            "{d}"
        );
    }
    let leads = p.evaluate(&facts("ann", &[], hours(1), &[LEADS]));
    assert_eq!(
        leads.check_duration(hours(9)).unwrap_err().0,
        "the duration must be between 15m and 8h; you asked for 9h (the maximum comes from the defaults)"
    );

    let clash = PolicyFile::parse(
        "[defaults]\napprover_groups = [\"o\"]\n[[rule]]\nname = \"long\"\nmatch = [\"a.*\"]\nmin_duration = \"3h\"\n[[rule]]\nname = \"short\"\nmatch = [\"b.*\"]\nmax_duration = \"2h\"\n",
        "p.toml",
    )
    .unwrap();
    let e = clash.evaluate(&facts(
        "ann",
        &[],
        hours(2),
        &[("a", "t", &["c"]), ("b", "t", &["c"])],
    ));
    assert_eq!(
        e.check_duration(hours(2)).unwrap_err().0,
        "these tables fall under rules that cannot agree on a duration: rule long needs at least 3h, rule short allows at most 2h; request them separately"
    );
}

// ---------------------------------------------------------------------------------------------
// Approvals

#[test]
fn approvals_count_distinct_people_and_never_the_requester() {
    let p = policy();
    // ann (herself in hr-owners) asks for hr.employees: 2 hr-owners needed.
    let e = p.evaluate(&facts("ann", &["hr-owners"], hours(1), &[EMPLOYEES_PLAIN]));
    let bob = approver("bob", &["hr-owners"]);
    let cat = approver("cat", &["hr-owners", "sales-owners"]);
    let ann = approver("ann", &["hr-owners"]);
    let dan = approver("dan", &["sales-owners"]);
    let cases: Vec<(&str, Vec<Approver>, bool, Vec<&str>)> = vec![
        (
            "nobody yet",
            vec![],
            false,
            vec!["2 more approvals from hr-owners (rule hr)"],
        ),
        (
            "one",
            vec![bob.clone()],
            false,
            vec!["1 more approval from hr-owners (rule hr)"],
        ),
        (
            "the same person twice",
            vec![bob.clone(), bob.clone()],
            false,
            vec!["1 more approval from hr-owners (rule hr)"],
        ),
        (
            "the requester herself",
            vec![ann.clone(), bob.clone()],
            false,
            vec!["1 more approval from hr-owners (rule hr)"],
        ),
        (
            "someone outside the group",
            vec![bob.clone(), dan.clone()],
            false,
            vec!["1 more approval from hr-owners (rule hr)"],
        ),
        (
            "two different people",
            vec![bob.clone(), cat.clone()],
            true,
            vec![],
        ),
    ];
    for (what, approvals, satisfied, missing) in cases {
        let s = e.approval_status(&approvals);
        assert_eq!(s.satisfied, satisfied, "{what}");
        assert_eq!(s.missing, missing, "{what}");
    }
    let s = e.approval_status(&[bob.clone(), ann.clone(), bob.clone(), cat.clone()]);
    assert_eq!(s.progress[0].approved_by, ["bob", "cat"]);
    assert_eq!(s.progress[0].still_needed, 0);
}

#[test]
fn one_approver_fills_every_requirement_whose_groups_they_are_in() {
    let p = policy();
    let e = p.evaluate(&facts(
        "ann",
        &[],
        hours(1),
        &[
            ("sales", "customers", &["customer_id"]),
            ("gl", "ledger", &["x"]),
        ],
    ));
    assert_eq!(e.requirements.len(), 2);
    let both = approver("bob", &["finance", "sales-owners"]);
    assert!(e.approval_status(&[both]).satisfied);
    let one = approver("cat", &["finance"]);
    let s = e.approval_status(&[one]);
    assert_eq!(
        s.missing,
        ["1 more approval from sales-owners (rule sales)"]
    );
}

#[test]
fn who_can_approve_now() {
    let p = policy();
    let e = p.evaluate(&facts(
        "ann",
        &["hr-owners"],
        hours(1),
        &[EMPLOYEES_PLAIN, LEADS],
    ));
    let bob = approver("bob", &["hr-owners"]);
    let cat = approver("cat", &["hr-owners"]);
    let dora = approver("dora", &["data-owners"]);
    let ann = approver("ann", &["hr-owners", "data-owners"]);
    let eve = approver("eve", &["analysts"]);
    // (who, approvals so far, can approve, is an approver of this request)
    let cases = [
        (&bob, vec![], true, true),
        (&bob, vec![bob.clone()], false, true),
        (&cat, vec![bob.clone()], true, true),
        (&dora, vec![bob.clone(), cat.clone()], true, true),
        (&cat, vec![bob.clone(), dora.clone()], true, true),
        (&dora, vec![dora.clone()], false, true),
        (
            &approver("fay", &["hr-owners"]),
            vec![bob.clone(), cat.clone()],
            false,
            true,
        ),
        (&ann, vec![], false, false),
        (&eve, vec![], false, false),
    ];
    for (who, approvals, can, is) in cases {
        assert_eq!(
            e.can_approve(who, &approvals),
            can,
            "{} can approve after {approvals:?}",
            who.subject
        );
        assert_eq!(e.is_approver(who), is, "{} is an approver", who.subject);
    }
}

// ---------------------------------------------------------------------------------------------
// Sensitive columns

#[test]
fn sensitive_columns_are_found_in_explicit_and_all_column_requests() {
    let p = policy();
    let catalog = strings(&["employee_id", "name", "department", "salary", "national_id"]);
    let all = ResourceSpec {
        database: "hr".into(),
        table: "employees".into(),
        columns: None,
    };
    let some = ResourceSpec {
        database: "hr".into(),
        table: "employees".into(),
        columns: Some(strings(&["department", "salary"])),
    };
    let plain = ResourceSpec {
        database: "hr".into(),
        table: "employees".into(),
        columns: Some(strings(&["department"])),
    };
    let sens = |c: &str| SensitiveColumn {
        database: "hr".into(),
        table: "employees".into(),
        column: c.into(),
        rule: "hr".into(),
    };
    let cases = [
        (
            "all columns",
            &all,
            vec![sens("salary"), sens("national_id")],
        ),
        ("explicit salary", &some, vec![sens("salary")]),
        ("no sensitive column", &plain, vec![]),
    ];
    let privacy = Requirement {
        groups: strings(&["privacy"]),
        count: 1,
        rules: strings(&["hr"]),
        sensitive: true,
    };
    for (what, spec, want) in cases {
        let e = p.evaluate(&RequestFacts {
            requester: "ann".into(),
            requester_groups: vec![],
            agent: false,
            duration: hours(1),
            tables: vec![TableFacts::from_spec(spec, &catalog)],
        });
        assert_eq!(e.sensitive_columns, want, "{what}");
        assert_eq!(
            e.requirements.contains(&privacy),
            !want.is_empty(),
            "{what}"
        );
    }

    let e = p.evaluate(&facts(
        "ann",
        &[],
        hours(1),
        &[("HR", "Employees", &["SALARY"])],
    ));
    assert_eq!(
        e.sensitive_columns,
        [sens("salary")],
        "case does not matter"
    );
    let s = e.approval_status(&[
        approver("bob", &["hr-owners"]),
        approver("cat", &["hr-owners"]),
    ]);
    assert_eq!(
        s.missing,
        ["1 more approval from privacy (sensitive columns, rule hr)"]
    );
    let s = e.approval_status(&[
        approver("bob", &["hr-owners"]),
        approver("cat", &["hr-owners", "privacy"]),
    ]);
    assert!(
        s.satisfied,
        "one person in both groups fills both requirements"
    );

    let unknown = p.evaluate(&facts("ann", &[], hours(1), &[("hr", "employees", &[])]));
    assert_eq!(
        unknown.sensitive_columns,
        [sens("*")],
        "unknown columns are assumed sensitive"
    );
}

#[test]
fn sensitive_columns_without_extra_approvers_only_stop_auto_approval() {
    let e = policy().evaluate(&facts("ann", &["analysts"], hours(1), &[CUSTOMERS_ALL]));
    assert_eq!(e.sensitive_columns.len(), 1);
    assert_eq!(e.sensitive_columns[0].to_string(), "sales.customers.email");
    assert_eq!(e.requirements.len(), 1);
    assert!(!e.auto_approval.allowed);
}

// ---------------------------------------------------------------------------------------------
// Auto-approval

#[test]
fn auto_approval_needs_every_rule_to_allow_it() {
    let p = policy();
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Duration,
        Vec<(&'a str, &'a str, &'a [&'a str])>,
        Vec<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "analyst, short, two rules that allow it",
            &["analysts"],
            hours(1),
            vec![ORDERS],
            vec![],
        ),
        (
            "at the limit",
            &["analysts"],
            hours(2),
            vec![ORDERS, CUSTOMERS_NO_EMAIL],
            vec![],
        ),
        (
            "too long for one rule",
            &["analysts"],
            hours(3),
            vec![ORDERS],
            vec!["rule sales auto-approves at most 2h; this request asks for 3h"],
        ),
        (
            "not in the group of one rule",
            &["finance-analysts"],
            hours(1),
            vec![ORDERS],
            vec!["rule sales auto-approves only members of analysts"],
        ),
        (
            "in no group",
            &["interns"],
            hours(1),
            vec![ORDERS],
            vec![
                "rule sales auto-approves only members of analysts",
                "rule finance-orders auto-approves only members of analysts or finance-analysts",
            ],
        ),
        (
            "a rule without auto-approval",
            &["analysts"],
            hours(1),
            vec![ORDERS, EMPLOYEES_PLAIN],
            vec!["rule hr does not allow auto-approval"],
        ),
        (
            "a table no rule matches",
            &["analysts"],
            hours(1),
            vec![ORDERS, LEADS],
            vec!["marketing.leads matches no rule, and the defaults never auto-approve"],
        ),
        (
            "sensitive columns",
            &["analysts"],
            hours(1),
            vec![CUSTOMERS_ALL],
            vec!["the request touches sensitive columns: sales.customers.email"],
        ),
    ];
    for (what, groups, d, tables, reasons) in cases {
        let e = p.evaluate(&facts("ann", groups, d, &tables));
        assert_eq!(e.auto_approval.allowed, reasons.is_empty(), "{what}");
        assert_eq!(e.auto_approval.reasons, reasons, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Break-glass

#[test]
fn break_glass_needs_every_rule_to_allow_it_and_takes_the_shortest_maximum() {
    let p = policy();
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Vec<(&'a str, &'a str, &'a [&'a str])>,
        Option<(Duration, &'a str)>,
        Vec<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "on-call, one rule",
            &["oncall"],
            vec![CUSTOMERS_ALL],
            Some((hours(1), "sales")),
            vec![],
        ),
        (
            "on-call, two rules",
            &["oncall"],
            vec![CUSTOMERS_ALL, EMPLOYEES_PLAIN],
            Some((mins(30), "hr")),
            vec![],
        ),
        (
            "not on call",
            &["analysts"],
            vec![CUSTOMERS_ALL],
            None,
            vec!["rule sales allows break-glass only for members of oncall"],
        ),
        (
            "a rule without break-glass",
            &["oncall"],
            vec![ORDERS],
            None,
            vec!["rule finance-orders has no break-glass"],
        ),
        (
            "a table no rule matches",
            &["oncall"],
            vec![CUSTOMERS_ALL, LEADS],
            None,
            vec!["marketing.leads matches no rule, and the defaults have no break-glass"],
        ),
    ];
    for (what, groups, tables, max, reasons) in cases {
        let e = p.evaluate(&facts("ann", groups, hours(1), &tables));
        assert_eq!(e.break_glass.allowed, max.is_some(), "{what}");
        assert_eq!(
            e.break_glass
                .max_duration
                .as_ref()
                .map(|l| (l.value, l.rule.as_str())),
            max,
            "{what}"
        );
        assert_eq!(e.break_glass.reasons, reasons, "{what}");
    }
}

#[test]
fn break_glass_durations_are_capped() {
    let p = policy();
    let e = p.evaluate(&facts(
        "ann",
        &["oncall"],
        mins(30),
        &[CUSTOMERS_ALL, EMPLOYEES_PLAIN],
    ));
    assert_eq!(e.check_break_glass(mins(30)), Ok(()));
    assert_eq!(
        e.check_break_glass(mins(45)).unwrap_err().0,
        "the duration must be between 30m and 30m; you asked for 45m (the maximum comes from rule hr)"
    );
    let no = p.evaluate(&facts("ann", &["analysts"], mins(30), &[CUSTOMERS_ALL]));
    assert_eq!(
        no.check_break_glass(mins(30)).unwrap_err().0,
        "break-glass is not available for this request: rule sales allows break-glass only for members of oncall"
    );
}

// ---------------------------------------------------------------------------------------------
// Extensions

#[test]
fn extensions_are_capped_by_the_maximum() {
    let e: Evaluation = policy().evaluate(&facts("ann", &[], hours(1), &[ORDERS]));
    assert_eq!(e.max_duration.value, hours(4));
    let cases = [
        (hours(1), hours(3), Ok(())),
        (hours(3), hours(1), Ok(())),
        (
            hours(3),
            hours(2),
            Err(
                "with 2h more the grant would last 5h in all, longer than the 4h rule sales allows; you can add at most 1h",
            ),
        ),
        (
            hours(4),
            mins(1),
            Err(
                "this grant already lasts 4h, the longest rule sales allows; it cannot be extended",
            ),
        ),
        (
            hours(1),
            Duration::ZERO,
            Err("an extension must add some time"),
        ),
    ];
    for (already, extra, want) in cases {
        assert_eq!(
            e.check_extension(already, extra).map_err(|e| e.0),
            want.map_err(str::to_owned),
            "{already} + {extra}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Without a policy file

#[test]
fn the_simple_settings_become_a_policy_with_no_rules() {
    let simple = Policy::new("data-owners", mins(15), hours(8), 10_000_000_000).unwrap();
    let p = PolicyFile::from_policy(&simple);
    assert_eq!(p.admin_group(), None);
    assert!(p.rules().is_empty());
    let e = p.evaluate(&facts("ann", &["data-owners"], hours(1), &[ORDERS]));
    assert_eq!(
        e.approval_status(&[]).missing,
        ["1 more approval from data-owners (defaults)"]
    );
    assert!(!e.auto_approval.allowed);
    assert!(!e.break_glass.allowed);
    assert_eq!(e.max_duration.value, hours(8));
    assert_eq!(e.default_duration, hours(1));
    assert!(
        e.approval_status(&[approver("bob", &["data-owners"])])
            .satisfied
    );
    assert!(
        !e.approval_status(&[approver("ann", &["data-owners"])])
            .satisfied
    );
}

#[test]
fn only_tables_a_rule_or_requestable_names_may_be_asked_for() {
    let p = PolicyFile::parse(POLICY, "policy.toml").unwrap();
    assert!(p.is_requestable("sales", "orders"));
    assert!(p.is_requestable("SALES", "Orders"), "case does not matter");
    assert!(p.is_requestable("hr", "employees"));
    assert!(p.is_requestable("finance", "ledger"), "*.ledger");
    assert!(!p.is_requestable("finance", "budget"), "no rule matches it");

    let open = format!("requestable = [\"finance.*\", \"*.public_?\"]\n{POLICY}");
    let p = PolicyFile::parse(&open, "policy.toml").unwrap();
    assert!(p.is_requestable("finance", "budget"));
    assert!(p.is_requestable("web", "public_1"));
    assert!(!p.is_requestable("web", "public_10"));
    assert!(p.is_requestable("sales", "orders"), "rules still count");

    // With no rules, [defaults] covers every table, so every table may be asked for.
    let simple = PolicyFile::from_policy(
        &Policy::new(
            "data-owners",
            Duration::minutes(15),
            Duration::hours(8),
            10_000_000_000,
        )
        .unwrap(),
    );
    assert!(simple.is_requestable("anything", "at_all"));

    let bad = format!("requestable = [\"finance\"]\n{POLICY}");
    let e = PolicyFile::parse(&bad, "policy.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "policy.toml:1: requestable pattern \"finance\" must look like database.table, like \"sales.*\" or \"*.customers\""
    );
}

/// An agent's request (through the MCP server) is auto-approved only where every rule that
/// applies says `agents = true`; the reason says which rule does not.
#[test]
fn agents_are_auto_approved_only_where_a_rule_allows_agents() {
    let orders = |agent: bool| RequestFacts {
        agent,
        ..facts(
            "ann",
            &["analysts"],
            hours(1),
            &[("sales", "orders", &["order_id", "amount"])],
        )
    };
    let p = policy();
    assert!(p.evaluate(&orders(false)).auto_approval.allowed);
    let e = p.evaluate(&orders(true));
    assert!(!e.auto_approval.allowed);
    assert!(
        e.auto_approval
            .reasons
            .iter()
            .any(|r| r.contains("rule sales does not auto-approve requests made by agents")),
        "{:?}",
        e.auto_approval.reasons
    );
    let allowing = POLICY
        .replace(
            "auto_approve = { requester_groups = [\"analysts\"], max_duration = \"2h\" }",
            "auto_approve = { requester_groups = [\"analysts\"], max_duration = \"2h\", agents = true }",
        )
        .replace(
            "auto_approve = { requester_groups = [\"analysts\", \"finance-analysts\"] }",
            "auto_approve = { requester_groups = [\"analysts\", \"finance-analysts\"], agents = true }",
        );
    let p = PolicyFile::parse(&allowing, "policy.toml").unwrap();
    assert!(p.evaluate(&orders(true)).auto_approval.allowed);
    // A mistyped value is refused at start-up, not ignored.
    let wrong = POLICY.replace(
        "max_duration = \"2h\" }",
        "max_duration = \"2h\", agents = \"yes\" }",
    );
    assert!(PolicyFile::parse(&wrong, "policy.toml").is_err());
}
