//! The approval policy file (`LAKEGATE_POLICY`, TOML): rules that match tables by glob and say
//! who approves, how many distinct approvals are needed, how long access may last, which columns
//! are sensitive, when a request is approved without anyone, and who may break the glass.
//!
//! Two halves, both pure:
//! - [`PolicyFile::parse`] (in `policy_file/parse.rs`) turns the file into checked rules, or into one error that names the
//!   file, the line and the rule, so an admin can fix it without reading code.
//! - [`PolicyFile::evaluate`] turns the facts of one request into an [`Evaluation`]: everything
//!   the request page shows ("why") and everything the decision code needs ("what").
//!
//! Matching is deliberately not first-match-wins: every rule whose pattern matches a table
//! applies to it, and a request spanning several rules gets the strictest combination. Adding a
//! rule can therefore only make a request harder to get, never easier, which is the safe
//! direction for a file that several teams edit. Tables no rule matches fall under `[defaults]`.
//!
//! Without a policy file the simple settings of the core product apply;
//! [`PolicyFile::from_policy`] expresses those as a policy with no rules so callers need only
//! one code path.

use std::collections::BTreeSet;
use std::fmt;

use time::Duration;

use crate::duration::format_duration;
use crate::error::ValidationError;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::request::AccessRequest;
use crate::target::ResourceSpec;

mod parse;

/// The label of `[defaults]` wherever a rule name would go (it is reserved as a rule name).
pub const DEFAULTS: &str = "defaults";
/// Longest access any rule may grant: AWS credentials and reviews are planned in days, not weeks.
pub const LONGEST_DURATION: Duration = Duration::days(7);
/// Shortest duration worth granting.
pub const SHORTEST_DURATION: Duration = Duration::minutes(1);
/// Most distinct approvals one rule may ask for.
pub const MAX_APPROVALS: u32 = 10;

// What `[defaults]` falls back to for keys it leaves out: the core product's defaults.
const BUILT_IN_MIN: Duration = Duration::minutes(15);
const BUILT_IN_MAX: Duration = Duration::hours(8);
const BUILT_IN_DEFAULT: Duration = Duration::hours(1);
const BUILT_IN_CUTOFF: i64 = 10_000_000_000;
const MAX_RULE_NAME_LEN: usize = 64;

// ---------------------------------------------------------------------------------------------
// The checked policy.

/// A parsed and checked policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    file_name: String,
    admin_group: Option<String>,
    /// `requestable`: more tables people may ask for besides those a rule matches.
    requestable: Option<Vec<String>>,
    defaults: Settings,
    rules: Vec<Rule>,
}

/// The settings `[defaults]` gives and each rule may override. Rules inherit every key they
/// leave out from `[defaults]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Sorted, deduplicated, never empty. Group names match the identity provider's exactly.
    pub approver_groups: Vec<String>,
    /// Distinct people (never the requester) from `approver_groups` who must approve.
    pub approvals: u32,
    /// What the request form proposes.
    pub default_duration: Duration,
    pub min_duration: Duration,
    pub max_duration: Duration,
    /// Per-query bytes-scanned cutoff of the grant's Athena workgroup.
    pub scan_cutoff_bytes: i64,
    /// Total bytes the grant may scan; `None` means no budget.
    pub scan_budget_bytes: Option<i64>,
    /// Every statement run in the query console must carry a `LIMIT` (or `FETCH FIRST`).
    pub require_limit: bool,
}

/// One `[[rule]]`, with the inherited settings filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Lower-case `database.table` globs.
    pub patterns: Vec<String>,
    pub settings: Settings,
    /// Lower-case column-name globs.
    pub sensitive_columns: Vec<String>,
    /// A request touching sensitive columns also needs one approval from these; when empty,
    /// sensitive columns only rule out auto-approval.
    pub sensitive_approver_groups: Vec<String>,
    pub auto_approve: Option<AutoApproveRule>,
    pub break_glass: Option<BreakGlassRule>,
    /// Where the rule's requests are told about, besides the deployment's own targets.
    pub notify: NotifyRule,
    /// 1-based line of the rule's header, for messages about the rule.
    pub line: usize,
}

/// A rule's own notification targets (`notify = { slack_channel = "...", webhooks = [...] }`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NotifyRule {
    /// The Slack channel its requests are posted to, instead of `LAKEGATE_SLACK_CHANNEL`.
    pub slack_channel: Option<String>,
    /// Webhooks that receive every notification of its requests, besides
    /// `LAKEGATE_WEBHOOK_URLS`.
    pub webhooks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproveRule {
    pub requester_groups: Vec<String>,
    /// Longest duration approved automatically; the rule's maximum when the file leaves it out.
    pub max_duration: Duration,
    /// Also requests an AI agent makes for a person (through the MCP server); off unless the
    /// file says `agents = true`.
    pub agents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRule {
    pub groups: Vec<String>,
    /// Longest break-glass access; the rule's maximum when the file leaves it out.
    pub max_duration: Duration,
}

/// Webhook URLs may carry a secret in their path: only how many there are is shown.
impl std::fmt::Debug for NotifyRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyRule")
            .field("slack_channel", &self.slack_channel)
            .field("webhooks", &self.webhooks.len())
            .finish()
    }
}

/// Why the policy file was refused: `policy.toml:14: rule "hr": max_duration 10d is longer than
/// the limit of 7d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    pub file: String,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    /// `rule "hr"`, `[defaults]`, or `None` at the top level.
    pub section: Option<String>,
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(section) = &self.section {
            write!(f, "{section}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for PolicyFileError {}

impl PolicyFile {
    /// The core product's simple settings as a policy with no rules: one approver group, one
    /// approval, no auto-approval, no break-glass.
    pub fn from_policy(policy: &Policy) -> Self {
        Self {
            file_name: "settings".to_owned(),
            admin_group: policy.admin_group.clone(),
            requestable: None,
            defaults: Settings {
                approver_groups: vec![policy.approver_group.clone()],
                approvals: 1,
                default_duration: BUILT_IN_DEFAULT.clamp(policy.min_duration, policy.max_duration),
                min_duration: policy.min_duration,
                max_duration: policy.max_duration,
                scan_cutoff_bytes: policy.scan_cutoff_bytes,
                scan_budget_bytes: None,
                require_limit: false,
            },
            rules: Vec::new(),
        }
    }

    /// Members of this group see every request and may revoke any grant.
    pub fn admin_group(&self) -> Option<&str> {
        self.admin_group.as_deref()
    }

    /// Names the admin group when the file does not (blank means none).
    pub fn with_admin_group(mut self, group: Option<String>) -> Self {
        if self.admin_group.is_none() {
            self.admin_group = group.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
        }
        self
    }

    pub fn is_admin(&self, who: &Principal) -> bool {
        self.admin_group.as_deref().is_some_and(|g| who.in_group(g))
    }

    /// Every group whose members approve something, sorted: `[defaults]`, each rule, and each
    /// rule's sensitive-column approvers.
    pub fn approver_groups(&self) -> Vec<&str> {
        let mut groups: BTreeSet<&str> = self
            .defaults
            .approver_groups
            .iter()
            .map(String::as_str)
            .collect();
        for r in &self.rules {
            groups.extend(r.settings.approver_groups.iter().map(String::as_str));
            groups.extend(r.sensitive_approver_groups.iter().map(String::as_str));
        }
        groups.into_iter().collect()
    }

    /// Whether people may ask for `database.table` at all; only then does lakegate look it up
    /// in the catalog, so the request form tells nobody what exists beyond that. A table is
    /// requestable when a `[[rule]]` matches it or a `requestable` pattern does; a policy with
    /// neither (the simple settings, or `[defaults]` alone) applies `[defaults]` to every table,
    /// and every table is requestable.
    pub fn is_requestable(&self, database: &str, table: &str) -> bool {
        let database = database.to_ascii_lowercase();
        let table = table.to_ascii_lowercase();
        if self.rules.is_empty() && self.requestable.is_none() {
            return true;
        }
        self.requestable
            .iter()
            .flatten()
            .chain(self.rules.iter().flat_map(|r| &r.patterns))
            .any(|p| table_glob_matches(p, &database, &table))
    }

    /// Whether some rule lets `who` break the glass (for whether the form offers it; each
    /// request is still checked against the rules of its own tables).
    pub fn may_break_glass(&self, who: &Principal) -> bool {
        self.rules.iter().any(|r| {
            r.break_glass
                .as_ref()
                .is_some_and(|b| b.groups.iter().any(|g| who.in_group(g)))
        })
    }

    /// Whether `who` approves anything at all (for whether the dashboard shows a queue).
    pub fn approves_anything(&self, who: &Principal) -> bool {
        self.approver_groups().into_iter().any(|g| who.in_group(g))
    }

    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// What applies to tables no rule matches.
    pub fn defaults(&self) -> &Settings {
        &self.defaults
    }

    /// In file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Applies the policy to one request. Never fails: a request that can be made at all gets
    /// an evaluation, and the checks on [`Evaluation`] say what it may do.
    ///
    /// A request naming no table is held to `[defaults]`, so it can never come out as needing
    /// no approval.
    pub fn evaluate(&self, req: &RequestFacts) -> Evaluation {
        let defaults_rule = Rule {
            name: DEFAULTS.to_owned(),
            patterns: Vec::new(),
            settings: self.defaults.clone(),
            sensitive_columns: Vec::new(),
            sensitive_approver_groups: Vec::new(),
            auto_approve: None,
            break_glass: None,
            notify: NotifyRule::default(),
            line: 0,
        };

        // Which rules apply: indexes into `self.rules`, `None` for the defaults.
        let mut applied: BTreeSet<Option<usize>> = BTreeSet::new();
        let mut tables = Vec::new();
        let mut sensitive_columns: Vec<SensitiveColumn> = Vec::new();
        // Rules with at least one sensitive column in this request (a column two rules call
        // sensitive is listed once, but counts for both).
        let mut sensitive_rules: BTreeSet<usize> = BTreeSet::new();
        let mut unmatched_tables = Vec::new();
        for t in &req.tables {
            let database = t.database.to_ascii_lowercase();
            let table = t.table.to_ascii_lowercase();
            let matched: Vec<usize> = self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.patterns
                        .iter()
                        .any(|p| table_glob_matches(p, &database, &table))
                })
                .map(|(i, _)| i)
                .collect();
            if matched.is_empty() {
                applied.insert(None);
                unmatched_tables.push(format!("{database}.{table}"));
            }
            for &i in &matched {
                applied.insert(Some(i));
                let rule = &self.rules[i];
                if rule.sensitive_columns.is_empty() {
                    continue;
                }
                let hits: Vec<String> = if t.columns.is_empty() {
                    // Unknown columns could be any of them; assume the worst.
                    vec!["*".to_owned()]
                } else {
                    t.columns
                        .iter()
                        .map(|c| c.to_ascii_lowercase())
                        .filter(|c| {
                            rule.sensitive_columns
                                .iter()
                                .any(|p| glob_matches(p.as_bytes(), c.as_bytes()))
                        })
                        .collect()
                };
                for column in hits {
                    sensitive_rules.insert(i);
                    if !sensitive_columns
                        .iter()
                        .any(|s| s.database == database && s.table == table && s.column == column)
                    {
                        sensitive_columns.push(SensitiveColumn {
                            database: database.clone(),
                            table: table.clone(),
                            column,
                            rule: rule.name.clone(),
                        });
                    }
                }
            }
            tables.push(TableRules {
                database,
                table,
                rules: if matched.is_empty() {
                    vec![DEFAULTS.to_owned()]
                } else {
                    matched
                        .iter()
                        .map(|&i| self.rules[i].name.clone())
                        .collect()
                },
            });
        }
        if applied.is_empty() {
            applied.insert(None);
        }
        // File order, the defaults last.
        let mut rules: Vec<&Rule> = applied
            .iter()
            .filter_map(|i| i.map(|i| &self.rules[i]))
            .collect();
        if applied.contains(&None) {
            rules.push(&defaults_rule);
        }

        // One requirement per rule, merged when the groups are the same: under the "one
        // approver may fill several requirements" rule that is exactly equivalent, and it keeps
        // the page from suggesting two approvals where one does.
        let mut requirements: Vec<Requirement> = Vec::new();
        for rule in &rules {
            add_requirement(
                &mut requirements,
                &rule.settings.approver_groups,
                rule.settings.approvals,
                &rule.name,
                false,
            );
        }
        for &i in &sensitive_rules {
            let rule = &self.rules[i];
            if !rule.sensitive_approver_groups.is_empty() {
                add_requirement(
                    &mut requirements,
                    &rule.sensitive_approver_groups,
                    1,
                    &rule.name,
                    true,
                );
            }
        }

        let (first, rest) = match rules.split_first() {
            Some((first, rest)) => (*first, rest),
            None => (&defaults_rule, &[][..]),
        };
        let min_duration = tightest(first, rest, |s| s.min_duration, |a, b| a > b);
        let max_duration = tightest(first, rest, |s| s.max_duration, |a, b| a < b);
        let default_value = tightest(first, rest, |s| s.default_duration, |a, b| a < b).value;
        let default_duration = if min_duration.value <= max_duration.value {
            default_value.clamp(min_duration.value, max_duration.value)
        } else {
            max_duration.value
        };
        let scan_cutoff_bytes = tightest(first, rest, |s| s.scan_cutoff_bytes, |a, b| a < b);
        let mut scan_budget_bytes: Option<Limit<i64>> = None;
        for rule in &rules {
            if let Some(b) = rule.settings.scan_budget_bytes
                && scan_budget_bytes.as_ref().is_none_or(|l| b < l.value)
            {
                scan_budget_bytes = Some(Limit {
                    value: b,
                    rule: rule.name.clone(),
                });
            }
        }

        let require_limit = rules
            .iter()
            .find(|r| r.settings.require_limit)
            .map(|r| r.name.clone());

        let in_any = |groups: &[String]| groups.iter().any(|g| req.requester_groups.contains(g));

        // Auto-approval: every applicable rule must allow it, and nothing sensitive.
        let mut auto_reasons = Vec::new();
        if req.tables.is_empty() {
            auto_reasons.push("the request names no table".to_owned());
        }
        if !unmatched_tables.is_empty() {
            auto_reasons.push(format!(
                "{} {} no rule, and the defaults never auto-approve",
                unmatched_tables.join(", "),
                if unmatched_tables.len() == 1 {
                    "matches"
                } else {
                    "match"
                }
            ));
        }
        for rule in rules.iter().filter(|r| r.name != DEFAULTS) {
            match &rule.auto_approve {
                None => {
                    auto_reasons.push(format!("rule {} does not allow auto-approval", rule.name))
                }
                Some(auto) => {
                    if !in_any(&auto.requester_groups) {
                        auto_reasons.push(format!(
                            "rule {} auto-approves only members of {}",
                            rule.name,
                            join_or(&auto.requester_groups)
                        ));
                    } else if req.agent && !auto.agents {
                        auto_reasons.push(format!(
                            "rule {} does not auto-approve requests made by agents (`agents = true` would)",
                            rule.name
                        ));
                    } else if req.duration > auto.max_duration {
                        auto_reasons.push(format!(
                            "rule {} auto-approves at most {}; this request asks for {}",
                            rule.name,
                            format_duration(auto.max_duration),
                            format_duration(req.duration)
                        ));
                    }
                }
            }
        }
        if !sensitive_columns.is_empty() {
            let names: Vec<String> = sensitive_columns.iter().map(|s| s.to_string()).collect();
            auto_reasons.push(format!(
                "the request touches sensitive columns: {}",
                names.join(", ")
            ));
        }
        // Callers check the duration anyway; this keeps a slip there from auto-approving.
        if req.duration < min_duration.value || req.duration > max_duration.value {
            auto_reasons.push(format!(
                "the duration {} is outside the allowed {} to {}",
                format_duration(req.duration),
                format_duration(min_duration.value),
                format_duration(max_duration.value)
            ));
        }

        // Break-glass: every applicable rule must allow it for the requester.
        let mut glass_reasons = Vec::new();
        let mut glass_max: Option<Limit<Duration>> = None;
        if req.tables.is_empty() {
            glass_reasons.push("the request names no table".to_owned());
        }
        if !unmatched_tables.is_empty() {
            glass_reasons.push(format!(
                "{} {} no rule, and the defaults have no break-glass",
                unmatched_tables.join(", "),
                if unmatched_tables.len() == 1 {
                    "matches"
                } else {
                    "match"
                }
            ));
        }
        for rule in rules.iter().filter(|r| r.name != DEFAULTS) {
            match &rule.break_glass {
                None => glass_reasons.push(format!("rule {} has no break-glass", rule.name)),
                Some(bg) if !in_any(&bg.groups) => glass_reasons.push(format!(
                    "rule {} allows break-glass only for members of {}",
                    rule.name,
                    join_or(&bg.groups)
                )),
                Some(bg) => {
                    if glass_max.as_ref().is_none_or(|l| bg.max_duration < l.value) {
                        glass_max = Some(Limit {
                            value: bg.max_duration,
                            rule: rule.name.clone(),
                        });
                    }
                }
            }
        }
        let glass_allowed = glass_reasons.is_empty();

        Evaluation {
            requester: req.requester.clone(),
            duration: req.duration,
            tables,
            requirements,
            sensitive_columns,
            min_duration,
            max_duration,
            default_duration,
            scan_cutoff_bytes,
            scan_budget_bytes,
            require_limit,
            auto_approval: AutoApproval {
                allowed: auto_reasons.is_empty(),
                reasons: auto_reasons,
            },
            break_glass: BreakGlass {
                allowed: glass_allowed,
                max_duration: if glass_allowed { glass_max } else { None },
                reasons: glass_reasons,
            },
        }
    }
}

fn rule_section(name: &str) -> String {
    format!("rule \"{name}\"")
}

fn add_requirement(
    requirements: &mut Vec<Requirement>,
    groups: &[String],
    count: u32,
    rule: &str,
    sensitive: bool,
) {
    if let Some(r) = requirements.iter_mut().find(|r| r.groups == groups) {
        r.count = r.count.max(count);
        r.sensitive |= sensitive;
        if !r.rules.iter().any(|n| n == rule) {
            r.rules.push(rule.to_owned());
        }
    } else {
        requirements.push(Requirement {
            groups: groups.to_vec(),
            count,
            rules: vec![rule.to_owned()],
            sensitive,
        });
    }
}

/// The value that wins under `stricter` across `first` and `rest`, and the first rule that
/// sets it. Taking `first` apart makes "there is always at least one rule" a type, not a hope.
fn tightest<T: Copy>(
    first: &Rule,
    rest: &[&Rule],
    get: impl Fn(&Settings) -> T,
    stricter: impl Fn(T, T) -> bool,
) -> Limit<T> {
    let mut best = Limit {
        value: get(&first.settings),
        rule: first.name.clone(),
    };
    for rule in rest {
        let v = get(&rule.settings);
        if stricter(v, best.value) {
            best = Limit {
                value: v,
                rule: rule.name.clone(),
            };
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Requests and evaluations.

/// What the policy needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// The requester's subject: their approvals never count.
    pub requester: String,
    pub requester_groups: Vec<String>,
    /// The duration asked for. For an extension, pass the grant's new total so that
    /// auto-approval limits bound the whole access, not each step.
    pub duration: Duration,
    pub tables: Vec<TableFacts>,
    /// An AI agent asked, on the requester's behalf: auto-approval needs `agents = true`.
    pub agent: bool,
}

impl RequestFacts {
    pub fn new(requester: &Principal, duration: Duration, tables: Vec<TableFacts>) -> Self {
        Self {
            requester: requester.subject.clone(),
            requester_groups: requester.groups.clone(),
            duration,
            tables,
            agent: requester.agent,
        }
    }

    /// A stored request as it was asked for (with the columns the catalog had then), for the
    /// whole time granted so far.
    pub fn of(request: &AccessRequest) -> Self {
        let none: Vec<String> = Vec::new();
        Self {
            requester: request.requester.subject.clone(),
            requester_groups: request.requester_groups.clone(),
            agent: request.agent.is_some(),
            duration: request.granted_total(),
            tables: request
                .resources
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    TableFacts::from_spec(spec, request.catalog_columns.get(i).unwrap_or(&none))
                })
                .collect(),
        }
    }
}

/// One requested table and the columns the grant would actually cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFacts {
    pub database: String,
    pub table: String,
    /// The explicit column list, or every column of the table when the request asks for all.
    /// Empty means unknown and is treated as touching every sensitive pattern.
    pub columns: Vec<String>,
}

impl TableFacts {
    /// `catalog_columns` are the table's columns in the Glue catalog; used when `spec` asks for
    /// all of them.
    pub fn from_spec(spec: &ResourceSpec, catalog_columns: &[String]) -> Self {
        Self {
            database: spec.database.clone(),
            table: spec.table.clone(),
            columns: spec
                .columns
                .clone()
                .unwrap_or_else(|| catalog_columns.to_vec()),
        }
    }
}

/// The policy applied to one request: what to show, and what to decide with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub requester: String,
    pub duration: Duration,
    /// In request order, each with the rules that match it (`["defaults"]` when none does).
    pub tables: Vec<TableRules>,
    /// All must be filled before the request is approved.
    pub requirements: Vec<Requirement>,
    pub sensitive_columns: Vec<SensitiveColumn>,
    /// The longest minimum of the rules that apply.
    pub min_duration: Limit<Duration>,
    /// The shortest maximum of the rules that apply.
    pub max_duration: Limit<Duration>,
    /// What to propose: the shortest default, within the bounds.
    pub default_duration: Duration,
    pub scan_cutoff_bytes: Limit<i64>,
    pub scan_budget_bytes: Option<Limit<i64>>,
    /// The first rule (or `defaults`) that requires a `LIMIT` on every console query; `None`
    /// when none does.
    pub require_limit: Option<String>,
    pub auto_approval: AutoApproval,
    pub break_glass: BreakGlass,
}

/// A requested table and the rules that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRules {
    pub database: String,
    pub table: String,
    pub rules: Vec<String>,
}

/// `count` distinct approvals from people in any of `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub groups: Vec<String>,
    pub count: u32,
    /// The rules this requirement comes from (`defaults` for the defaults).
    pub rules: Vec<String>,
    /// It comes (at least in part) from sensitive columns.
    pub sensitive: bool,
}

impl Requirement {
    /// `rule hr`, `sensitive columns, rule hr`, `rule marketing, rule sales`, `defaults`.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.sensitive {
            parts.push("sensitive columns".to_owned());
        }
        for r in &self.rules {
            if r == DEFAULTS {
                parts.push(DEFAULTS.to_owned());
            } else {
                parts.push(format!("rule {r}"));
            }
        }
        parts.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensitiveColumn {
    pub database: String,
    pub table: String,
    /// `*` when the request did not say which columns it covers.
    pub column: String,
    /// The (first) rule that calls it sensitive.
    pub rule: String,
}

impl fmt::Display for SensitiveColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.database, self.table, self.column)
    }
}

/// A combined limit and the rule it comes from, so the page can say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit<T> {
    pub value: T,
    /// A rule name, or `defaults`.
    pub rule: String,
}

/// Whether the request may be approved without anyone; `reasons` say why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproval {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

/// Whether the requester may activate the request at once; `reasons` say why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    pub allowed: bool,
    /// The shortest break-glass maximum of the rules that apply; `Some` when allowed.
    pub max_duration: Option<Limit<Duration>>,
    pub reasons: Vec<String>,
}

/// Someone who approved (or might approve), with their groups when they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub subject: String,
    pub groups: Vec<String>,
}

impl From<&Principal> for Approver {
    fn from(p: &Principal) -> Self {
        Self {
            subject: p.subject.clone(),
            groups: p.groups.clone(),
        }
    }
}

/// How far a request is from approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalStatus {
    pub satisfied: bool,
    /// `1 more approval from hr-owners (rule hr)`, one line per unfilled requirement.
    pub missing: Vec<String>,
    /// One per [`Evaluation::requirements`], in the same order.
    pub progress: Vec<RequirementProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementProgress {
    /// Subjects whose approval counts toward this requirement, in approval order.
    pub approved_by: Vec<String>,
    pub still_needed: u32,
}

impl Evaluation {
    /// The requested duration must fit every rule that applies.
    pub fn check_duration(&self, d: Duration) -> Result<(), ValidationError> {
        self.check_bounds(d, self.max_duration.value, &self.max_duration.rule)
    }

    fn check_bounds(
        &self,
        d: Duration,
        max: Duration,
        max_rule: &str,
    ) -> Result<(), ValidationError> {
        let min = &self.min_duration;
        if min.value > max {
            return Err(ValidationError::new(format!(
                "these tables fall under rules that cannot agree on a duration: {} needs at least {}, {} allows at most {}; request them separately",
                describe(&min.rule),
                format_duration(min.value),
                describe(max_rule),
                format_duration(max)
            )));
        }
        if d < min.value {
            return Err(ValidationError::new(format!(
                "the duration must be between {} and {}; you asked for {} (the minimum comes from {})",
                format_duration(min.value),
                format_duration(max),
                format_duration(d),
                describe(&min.rule)
            )));
        }
        if d > max {
            return Err(ValidationError::new(format!(
                "the duration must be between {} and {}; you asked for {} (the maximum comes from {})",
                format_duration(min.value),
                format_duration(max),
                format_duration(d),
                describe(max_rule)
            )));
        }
        Ok(())
    }

    /// Break-glass activation for `d`: allowed for this requester, and within the shortest
    /// break-glass maximum of the rules that apply.
    pub fn check_break_glass(&self, d: Duration) -> Result<(), ValidationError> {
        match &self.break_glass.max_duration {
            Some(max) if self.break_glass.allowed => self.check_bounds(d, max.value, &max.rule),
            _ => Err(ValidationError::new(format!(
                "break-glass is not available for this request: {}",
                self.break_glass.reasons.join("; ")
            ))),
        }
    }

    /// An extension of `extra` to a grant that has been given `already_granted_total` so far
    /// (its original duration plus earlier extensions): the total may not pass the maximum.
    pub fn check_extension(
        &self,
        already_granted_total: Duration,
        extra: Duration,
    ) -> Result<(), ValidationError> {
        let max = &self.max_duration;
        if extra <= Duration::ZERO {
            return Err(ValidationError::new("an extension must add some time"));
        }
        if already_granted_total >= max.value {
            return Err(ValidationError::new(format!(
                "this grant already lasts {}, the longest {} allows; it cannot be extended",
                format_duration(already_granted_total),
                describe(&max.rule)
            )));
        }
        let total = already_granted_total + extra;
        if total > max.value {
            return Err(ValidationError::new(format!(
                "with {} more the grant would last {} in all, longer than the {} {} allows; you can add at most {}",
                format_duration(extra),
                format_duration(total),
                format_duration(max.value),
                describe(&max.rule),
                format_duration(max.value - already_granted_total)
            )));
        }
        Ok(())
    }

    /// Which requirements the `approvals` so far fill.
    ///
    /// The requester's own approval never counts, and each person counts once per requirement
    /// however often they approve. One approval counts toward *every* requirement whose groups
    /// the approver is in: someone in both `sales-owners` and `privacy` fills a rule's
    /// approval and its sensitive-column approval at once. An admin who wants two different
    /// people must ask for `approvals = 2` or name groups with no members in common.
    pub fn approval_status(&self, approvals: &[Approver]) -> ApprovalStatus {
        let mut progress = Vec::with_capacity(self.requirements.len());
        let mut missing = Vec::new();
        for req in &self.requirements {
            let mut approved_by: Vec<String> = Vec::new();
            for a in approvals {
                if a.subject != self.requester
                    && a.groups.iter().any(|g| req.groups.contains(g))
                    && !approved_by.contains(&a.subject)
                {
                    approved_by.push(a.subject.clone());
                }
            }
            let have = u32::try_from(approved_by.len()).unwrap_or(u32::MAX);
            let still_needed = req.count.saturating_sub(have);
            if still_needed > 0 {
                missing.push(format!(
                    "{still_needed} more {} from {} ({})",
                    if still_needed == 1 {
                        "approval"
                    } else {
                        "approvals"
                    },
                    join_or(&req.groups),
                    req.label()
                ));
            }
            progress.push(RequirementProgress {
                approved_by,
                still_needed,
            });
        }
        ApprovalStatus {
            satisfied: missing.is_empty(),
            missing,
            progress,
        }
    }

    /// Whether `approver`'s approval would fill something now: not the requester, has not
    /// approved already, and in a group of a requirement still short of approvals.
    pub fn can_approve(&self, approver: &Approver, approvals: &[Approver]) -> bool {
        if approver.subject == self.requester
            || approvals.iter().any(|a| a.subject == approver.subject)
        {
            return false;
        }
        let status = self.approval_status(approvals);
        self.requirements
            .iter()
            .zip(&status.progress)
            .any(|(req, p)| {
                p.still_needed > 0 && approver.groups.iter().any(|g| req.groups.contains(g))
            })
    }

    /// Every group whose members may decide this request, sorted: what the approvers' queues
    /// select on.
    pub fn approver_groups(&self) -> Vec<String> {
        let groups: BTreeSet<&String> = self.requirements.iter().flat_map(|r| &r.groups).collect();
        groups.into_iter().cloned().collect()
    }

    /// Whether `who` is among this request's approvers at all (whatever has been filled), for
    /// who may see and deny it. Never the requester.
    pub fn is_approver(&self, who: &Approver) -> bool {
        who.subject != self.requester
            && self
                .requirements
                .iter()
                .any(|req| who.groups.iter().any(|g| req.groups.contains(g)))
    }
}

fn describe(rule: &str) -> String {
    if rule == DEFAULTS {
        "the defaults".to_owned()
    } else {
        format!("rule {rule}")
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Globs.

/// `database.table` against a checked pattern: `*` and `?` never cross the dot.
fn table_glob_matches(pattern: &str, database: &str, table: &str) -> bool {
    match pattern.split_once('.') {
        Some((db_pat, table_pat)) => {
            glob_matches(db_pat.as_bytes(), database.as_bytes())
                && glob_matches(table_pat.as_bytes(), table.as_bytes())
        }
        None => false,
    }
}

/// `*` matches any run of characters (even none), `?` exactly one. Names are ASCII.
fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and how much of the name it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

// ---------------------------------------------------------------------------------------------
// Sizes.

const SIZE_UNITS: [(&str, i64); 6] = [
    ("PB", 1_000_000_000_000_000),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

/// `10GB`, `500MB`, `1TB` → bytes, in decimal units as Athena counts.
pub fn parse_size(input: &str) -> Result<i64, String> {
    let s = input.trim().to_ascii_uppercase();
    let invalid = || {
        format!(
            "`{}` is not a size: use a number with a unit, like 500MB, 10GB or 1TB",
            input.trim()
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| invalid())?;
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(invalid)?
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{}` is too large", input.trim()))
}

/// Bytes in the largest decimal unit that divides them exactly: `10GB`, `1500MB`, `7B`.
pub fn format_bytes(bytes: i64) -> String {
    for (unit, size) in SIZE_UNITS {
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("a*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("?b", "ab", true),
            ("?b", "b", false),
            ("*_id", "national_id", true),
            ("*_id*", "national_identity", true),
            ("a*b*c", "aXbYbZc", true),
            ("orders", "orders2", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_matches(p.as_bytes(), n.as_bytes()), want, "{p} vs {n}");
        }
        assert!(table_glob_matches("sales.*", "sales", "orders"));
        assert!(!table_glob_matches("sales*", "sales", "orders"));
        assert!(!table_glob_matches("s*", "sales", "orders"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size(" 10 mb "), Ok(10_000_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("GB").is_err());
        assert!(parse_size("99999999999PB").is_err());
        assert_eq!(format_bytes(10_000_000_000), "10GB");
        assert_eq!(format_bytes(1_500_000_000), "1500MB");
        assert_eq!(format_bytes(7), "7B");
        assert_eq!(format_bytes(0), "0B");
    }
}
