//! Reading a policy file: the TOML as written, checked key by key, resolved against
//! `[defaults]`, with every mistake reported as one error naming the file, the line and the
//! rule (and the key an unknown one was probably meant to be).

use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::*;
use crate::duration::parse_duration;
use crate::policy::MIN_SCAN_CUTOFF_BYTES;

impl PolicyFile {
    /// Parses and checks a policy file. `file_name` is only used in error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, PolicyFileError> {
        let cx = Ctx {
            text,
            file: file_name,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;

        let admin_group = match raw.admin_group {
            None => None,
            Some(g) => {
                let name = g.get_ref().trim();
                if name.is_empty() {
                    return Err(cx.err(Some(g.span()), None, "admin_group is empty"));
                }
                Some(name.to_owned())
            }
        };

        let Some(raw_defaults) = raw.defaults else {
            return Err(cx.err(
                None,
                None,
                "[defaults] is missing: it names the approver groups for tables no rule matches",
            ));
        };
        let defaults_header = raw_defaults.span();
        let defaults = resolve_settings(
            &cx,
            "[defaults]",
            raw_defaults.into_inner(),
            None,
            defaults_header,
        )?;

        let mut rules: Vec<Rule> = Vec::new();
        for (index, raw_rule) in raw.rules.into_iter().enumerate() {
            let header = raw_rule.span();
            let name_span = raw_rule.get_ref().name.span();
            let rule = resolve_rule(&cx, index, raw_rule.into_inner(), &defaults, header.clone())?;
            if let Some(other) = rules
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&rule.name))
            {
                return Err(cx.err(
                    Some(name_span),
                    Some(rule_section(&rule.name)),
                    format!(
                        "the name is already used by the rule on line {}",
                        other.line
                    ),
                ));
            }
            rules.push(rule);
        }

        let requestable = match raw.requestable {
            None => None,
            Some(list) => {
                let mut patterns = Vec::new();
                for p in list.into_inner() {
                    patterns.push(
                        table_pattern("requestable", p.get_ref())
                            .map_err(|m| cx.err(Some(p.span()), None, m))?,
                    );
                }
                Some(patterns)
            }
        };

        Ok(Self {
            file_name: file_name.to_owned(),
            admin_group,
            requestable,
            defaults,
            rules,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    admin_group: Option<Spanned<String>>,
    requestable: Option<RawList>,
    defaults: Option<Spanned<RawSettings>>,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RawRule>>,
}

type RawList = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    approver_groups: Option<RawList>,
    approvals: Option<Spanned<i64>>,
    default_duration: Option<Spanned<String>>,
    min_duration: Option<Spanned<String>>,
    max_duration: Option<Spanned<String>>,
    query_scan_cutoff: Option<Spanned<String>>,
    scan_budget: Option<Spanned<String>>,
    require_limit: Option<bool>,
}

// serde cannot flatten into a struct that denies unknown fields, hence the repetition.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(rename = "match")]
    patterns: RawList,
    approver_groups: Option<RawList>,
    approvals: Option<Spanned<i64>>,
    default_duration: Option<Spanned<String>>,
    min_duration: Option<Spanned<String>>,
    max_duration: Option<Spanned<String>>,
    query_scan_cutoff: Option<Spanned<String>>,
    scan_budget: Option<Spanned<String>>,
    require_limit: Option<bool>,
    sensitive_columns: Option<RawList>,
    sensitive_approver_groups: Option<RawList>,
    auto_approve: Option<Spanned<RawAutoApprove>>,
    break_glass: Option<Spanned<RawBreakGlass>>,
    notify: Option<Spanned<RawNotify>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    slack_channel: Option<Spanned<String>>,
    webhooks: Option<RawList>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoApprove {
    requester_groups: RawList,
    max_duration: Option<Spanned<String>>,
    #[serde(default)]
    agents: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreakGlass {
    groups: RawList,
    max_duration: Option<Spanned<String>>,
}

/// Just enough of the file to say which section a syntax or type error is in.
#[derive(Deserialize)]
struct LooseFile {
    defaults: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    rule: Vec<Spanned<LooseRule>>,
}

#[derive(Deserialize)]
struct LooseRule {
    name: Option<toml::Value>,
}

// ---------------------------------------------------------------------------------------------
// Checking.

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(
        &self,
        span: Option<Range<usize>>,
        section: Option<String>,
        message: impl Into<String>,
    ) -> PolicyFileError {
        PolicyFileError {
            file: self.file.to_owned(),
            line: span.map(|s| self.line_of(s.start)),
            section,
            message: message.into(),
        }
    }

    /// A syntax or type error from the TOML reader, reworded for an admin.
    fn toml_error(&self, e: &toml::de::Error) -> PolicyFileError {
        let span = e.span();
        let section = span.as_ref().and_then(|s| self.section_at(s.start));
        let key = span.as_ref().and_then(|s| self.key_before(s.start));
        let message = if e.message() == "duplicate key"
            && let Some(s) = &span
            && let Some(name) = self.text.get(s.clone())
        {
            format!("duplicate key \"{}\"", name.trim())
        } else {
            reword(e.message(), key.as_deref(), section.as_deref())
        };
        self.err(span, section, message)
    }

    /// The section (`[defaults]` or a rule) an offset falls in, from the headers before it.
    fn section_at(&self, offset: usize) -> Option<String> {
        // Spans fall on token boundaries; `get` only guards against a reader that disagrees.
        let line_start = self.text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
        let line = self
            .text
            .get(line_start..)?
            .lines()
            .next()
            .unwrap_or("")
            .trim_start();
        let loose: LooseFile = toml::from_str(self.text).ok()?;
        // A table header belongs to the section its name starts with, not to the one above.
        let header_owner = line.strip_prefix('[').map(|h| {
            h.trim_start_matches('[')
                .split([']', '.'])
                .next()
                .unwrap_or("")
                .trim()
        });
        match header_owner {
            Some("defaults") => return Some("[defaults]".to_owned()),
            Some("rule") | None => {}
            Some(_) => return None,
        }
        let mut best: Option<(usize, Option<String>)> = None;
        // A top-level `defaults = 3` starts where its error is, yet is not inside [defaults].
        let contains = |start: usize| {
            start < offset
                || (start == offset && self.text.get(start..).is_some_and(|t| t.starts_with('[')))
        };
        if let Some(d) = &loose.defaults
            && contains(d.span().start)
        {
            best = Some((d.span().start, Some("[defaults]".to_owned())));
        }
        for (i, r) in loose.rule.iter().enumerate() {
            if contains(r.span().start) && best.as_ref().is_none_or(|(s, _)| r.span().start >= *s) {
                let label = match &r.get_ref().name {
                    Some(toml::Value::String(n)) if !n.trim().is_empty() => rule_section(n.trim()),
                    _ => format!("rule #{}", i + 1),
                };
                best = Some((r.span().start, Some(label)));
            }
        }
        best.and_then(|(_, s)| s)
    }

    /// The key a value at `offset` belongs to, when it is on the same line: `key = value`,
    /// `key = [.., value]`, `{ .., key = value }`.
    fn key_before(&self, offset: usize) -> Option<String> {
        let before_offset = self.text.get(..offset)?;
        let line_start = before_offset.rfind('\n').map_or(0, |i| i + 1);
        let before = &before_offset[line_start..];
        let eq = before.rfind('=')?;
        let key: String = before[..eq]
            .trim_end()
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        (!key.is_empty()).then_some(key)
    }
}

/// Rewrites serde's wording (`unknown field`, `invalid type: .. expected i64`) in the words of
/// the file (keys, lists, tables, whole numbers).
fn reword(message: &str, key: Option<&str>, section: Option<&str>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let expected: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let rule_only = [
            "match",
            "name",
            "sensitive_columns",
            "sensitive_approver_groups",
            "auto_approve",
            "break_glass",
            "notify",
        ];
        if section == Some("[defaults]") && rule_only.contains(&field) {
            return format!("unknown key \"{field}\" ({field} can only be set in a [[rule]])");
        }
        if let Some(close) = expected
            .iter()
            .filter(|e| looks_like(field, e))
            .min_by_key(|e| edit_distance(field, e))
        {
            return format!("unknown key \"{field}\" (did you mean {close}?)");
        }
        if expected.is_empty() {
            return format!("unknown key \"{field}\"");
        }
        return format!(
            "unknown key \"{field}\" (the keys here are {})",
            expected.join(", ")
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        let hint = match field {
            "name" => " (every rule needs a unique name)",
            "match" => " (the tables the rule covers, like [\"sales.*\"])",
            "requester_groups" => " (the groups whose requests are approved automatically)",
            "groups" => " (the groups that may use break-glass)",
            _ => "",
        };
        return format!("missing key \"{field}\"{hint}");
    }
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let expected = if expected.starts_with("struct ") || expected == "a map" {
            "a table"
        } else if expected == "a sequence" {
            "a list, like [\"a\", \"b\"]"
        } else if matches!(expected, "i64" | "i32" | "u64" | "u32" | "usize") {
            "a whole number"
        } else if expected == "a string" {
            "a string in quotes"
        } else {
            expected
        };
        let found = found.replace('`', "");
        return match key {
            Some(k) => format!("{k}: expected {expected}, found {found}"),
            None => format!("expected {expected}, found {found}"),
        };
    }
    message.to_owned()
}

/// Close enough to be a typo: one is a prefix of the other, or at most two edits apart.
fn looks_like(typed: &str, known: &str) -> bool {
    typed.starts_with(known) || known.starts_with(typed) || edit_distance(typed, known) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Where a setting's value came from, for messages about conflicts.
#[derive(Clone)]
enum Origin {
    /// Written in the section being checked.
    Here(Range<usize>),
    /// Left out of a rule, so taken from `[defaults]`.
    Defaults,
    /// Left out of `[defaults]`, so lakegate's own default.
    BuiltIn,
}

impl Origin {
    fn suffix(&self) -> &'static str {
        match self {
            Origin::Here(_) => "",
            Origin::Defaults => " (from [defaults])",
            Origin::BuiltIn => " (lakegate's default)",
        }
    }

    fn span(&self) -> Option<Range<usize>> {
        match self {
            Origin::Here(s) => Some(s.clone()),
            _ => None,
        }
    }
}

struct Checker<'a, 'b> {
    cx: &'a Ctx<'b>,
    section: String,
    /// Where to point when no value of this section is to blame.
    header: Range<usize>,
}

impl Checker<'_, '_> {
    fn fail(&self, span: Option<Range<usize>>, message: impl Into<String>) -> PolicyFileError {
        self.cx.err(
            Some(span.unwrap_or_else(|| self.header.clone())),
            Some(self.section.clone()),
            message,
        )
    }

    fn groups(
        &self,
        key: &str,
        raw: RawList,
        may_be_empty: bool,
    ) -> Result<Vec<String>, PolicyFileError> {
        if raw.get_ref().is_empty() && !may_be_empty {
            return Err(self.fail(
                Some(raw.span()),
                format!("{key} is empty; name at least one group"),
            ));
        }
        let mut groups = Vec::new();
        for g in raw.into_inner() {
            let name = g.get_ref().trim();
            if name.is_empty() {
                return Err(self.fail(Some(g.span()), format!("{key}: a group name is empty")));
            }
            groups.push(name.to_owned());
        }
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    fn duration(&self, key: &str, raw: &Spanned<String>) -> Result<Duration, PolicyFileError> {
        let d = parse_duration(raw.get_ref())
            .map_err(|e| self.fail(Some(raw.span()), format!("{key}: {e}")))?;
        if d > LONGEST_DURATION {
            return Err(self.fail(
                Some(raw.span()),
                format!(
                    "{key} {} is longer than the limit of {}",
                    format_duration(d),
                    format_duration(LONGEST_DURATION)
                ),
            ));
        }
        if d < SHORTEST_DURATION {
            return Err(self.fail(
                Some(raw.span()),
                format!(
                    "{key} {} is shorter than the shortest allowed, {}",
                    format_duration(d),
                    format_duration(SHORTEST_DURATION)
                ),
            ));
        }
        Ok(d)
    }

    fn size(&self, key: &str, raw: &Spanned<String>) -> Result<i64, PolicyFileError> {
        parse_size(raw.get_ref()).map_err(|e| self.fail(Some(raw.span()), format!("{key}: {e}")))
    }

    /// `lower` must not be above `upper`. Blames whichever of them this section wrote, the
    /// lower one first if `blame_lower` (it is the one being introduced) and both are.
    fn ordered(
        &self,
        (lower_key, lower, lower_origin): (&str, Duration, &Origin),
        (upper_key, upper, upper_origin): (&str, Duration, &Origin),
        blame_lower: bool,
    ) -> Result<(), PolicyFileError> {
        if lower <= upper {
            return Ok(());
        }
        let lower_here = matches!(lower_origin, Origin::Here(_));
        if let Origin::Here(span) = upper_origin
            && !(blame_lower && lower_here)
        {
            return Err(self.fail(
                Some(span.clone()),
                format!(
                    "{upper_key} {} is shorter than {lower_key} {}{}",
                    format_duration(upper),
                    format_duration(lower),
                    lower_origin.suffix()
                ),
            ));
        }
        Err(self.fail(
            lower_origin.span(),
            format!(
                "{lower_key} {} is longer than {upper_key} {}{}",
                format_duration(lower),
                format_duration(upper),
                upper_origin.suffix()
            ),
        ))
    }
}

/// A section's settings, each key taken from `raw` or else from `base` (a rule's `[defaults]`)
/// or else lakegate's own default.
fn resolve_settings(
    cx: &Ctx<'_>,
    section: &str,
    raw: RawSettings,
    base: Option<&Settings>,
    header: Range<usize>,
) -> Result<Settings, PolicyFileError> {
    let ck = Checker {
        cx,
        section: section.to_owned(),
        header,
    };
    let inherited = if base.is_some() {
        Origin::Defaults
    } else {
        Origin::BuiltIn
    };

    let approver_groups = match (raw.approver_groups, base) {
        (Some(list), _) => ck.groups("approver_groups", list, false)?,
        (None, Some(b)) => b.approver_groups.clone(),
        (None, None) => {
            return Err(ck.fail(
                None,
                "approver_groups is missing; name the groups whose members approve requests for tables no rule matches",
            ));
        }
    };

    let approvals = match (raw.approvals, base) {
        (Some(n), _) => {
            let v = *n.get_ref();
            if !(1..=i64::from(MAX_APPROVALS)).contains(&v) {
                return Err(ck.fail(
                    Some(n.span()),
                    format!("approvals must be between 1 and {MAX_APPROVALS}, not {v}"),
                ));
            }
            u32::try_from(v).unwrap_or(1)
        }
        (None, Some(b)) => b.approvals,
        (None, None) => 1,
    };

    let duration = |key: &str,
                    raw: Option<Spanned<String>>,
                    from_base: Option<Duration>,
                    built_in: Duration|
     -> Result<(Duration, Origin), PolicyFileError> {
        match (raw, from_base) {
            (Some(r), _) => Ok((ck.duration(key, &r)?, Origin::Here(r.span()))),
            (None, Some(b)) => Ok((b, inherited.clone())),
            (None, None) => Ok((built_in, inherited.clone())),
        }
    };
    let (min, min_o) = duration(
        "min_duration",
        raw.min_duration,
        base.map(|b| b.min_duration),
        BUILT_IN_MIN,
    )?;
    let (max, max_o) = duration(
        "max_duration",
        raw.max_duration,
        base.map(|b| b.max_duration),
        BUILT_IN_MAX,
    )?;
    let default_written = raw.default_duration.is_some();
    let (default, default_o) = duration(
        "default_duration",
        raw.default_duration,
        base.map(|b| b.default_duration),
        BUILT_IN_DEFAULT,
    )?;
    ck.ordered(
        ("min_duration", min, &min_o),
        ("max_duration", max, &max_o),
        false,
    )?;
    let default = if default_written {
        ck.ordered(
            ("min_duration", min, &min_o),
            ("default_duration", default, &default_o),
            false,
        )?;
        ck.ordered(
            ("default_duration", default, &default_o),
            ("max_duration", max, &max_o),
            true,
        )?;
        default
    } else {
        // An inherited proposal adapts to the section's own bounds rather than failing it.
        default.clamp(min, max)
    };

    let (cutoff, cutoff_o) = match (raw.query_scan_cutoff, base) {
        (Some(r), _) => {
            let v = ck.size("query_scan_cutoff", &r)?;
            if v < MIN_SCAN_CUTOFF_BYTES {
                return Err(ck.fail(
                    Some(r.span()),
                    format!(
                        "query_scan_cutoff {} is below Athena's minimum of {}",
                        format_bytes(v),
                        format_bytes(MIN_SCAN_CUTOFF_BYTES)
                    ),
                ));
            }
            (v, Origin::Here(r.span()))
        }
        (None, Some(b)) => (b.scan_cutoff_bytes, inherited.clone()),
        (None, None) => (BUILT_IN_CUTOFF, inherited.clone()),
    };
    let budget = match (raw.scan_budget, base) {
        (Some(r), _) => Some((ck.size("scan_budget", &r)?, Origin::Here(r.span()))),
        (None, Some(b)) => b.scan_budget_bytes.map(|v| (v, inherited.clone())),
        (None, None) => None,
    };
    if let Some((budget, budget_o)) = &budget
        && *budget < cutoff
    {
        return Err(match budget_o {
            Origin::Here(span) => ck.fail(
                Some(span.clone()),
                format!(
                    "scan_budget {} is smaller than query_scan_cutoff {}{}",
                    format_bytes(*budget),
                    format_bytes(cutoff),
                    cutoff_o.suffix()
                ),
            ),
            _ => ck.fail(
                cutoff_o.span(),
                format!(
                    "query_scan_cutoff {} is larger than scan_budget {}{}",
                    format_bytes(cutoff),
                    format_bytes(*budget),
                    budget_o.suffix()
                ),
            ),
        });
    }

    Ok(Settings {
        approver_groups,
        approvals,
        default_duration: default,
        min_duration: min,
        max_duration: max,
        scan_cutoff_bytes: cutoff,
        scan_budget_bytes: budget.map(|(v, _)| v),
        require_limit: raw
            .require_limit
            .or(base.map(|b| b.require_limit))
            .unwrap_or(false),
    })
}

/// A `database.table` pattern as `match` and `requestable` take it, lower-cased; the error
/// message names `key`.
fn table_pattern(key: &str, written: &str) -> Result<String, String> {
    let text = written.trim().to_ascii_lowercase();
    let (db, table) = text.split_once('.').unwrap_or((&text, ""));
    if text.is_empty() {
        return Err(format!("{key}: a pattern is empty"));
    }
    if db.is_empty() || table.is_empty() || table.contains('.') {
        return Err(format!(
            "{key} pattern \"{}\" must look like database.table, like \"sales.*\" or \"*.customers\"",
            written.trim()
        ));
    }
    if !text.chars().all(|c| is_glob_char(c) || c == '.') {
        return Err(format!(
            "{key} pattern \"{}\" may use only letters, digits, _ and the wildcards * and ?",
            written.trim()
        ));
    }
    Ok(text)
}

fn resolve_rule(
    cx: &Ctx<'_>,
    index: usize,
    raw: RawRule,
    defaults: &Settings,
    header: Range<usize>,
) -> Result<Rule, PolicyFileError> {
    let name = raw.name.get_ref().trim().to_owned();
    let unnamed = Checker {
        cx,
        section: format!("rule #{}", index + 1),
        header: header.clone(),
    };
    if name.is_empty() {
        return Err(unnamed.fail(Some(raw.name.span()), "name is empty"));
    }
    if name.chars().count() > MAX_RULE_NAME_LEN || name.chars().any(char::is_control) {
        return Err(unnamed.fail(
            Some(raw.name.span()),
            format!("name must be at most {MAX_RULE_NAME_LEN} characters, on one line"),
        ));
    }
    if name.eq_ignore_ascii_case(DEFAULTS) {
        return Err(unnamed.fail(
            Some(raw.name.span()),
            "the name \"defaults\" is reserved for [defaults]; choose another",
        ));
    }
    let section = rule_section(&name);
    let ck = Checker {
        cx,
        section: section.clone(),
        header: header.clone(),
    };

    if raw.patterns.get_ref().is_empty() {
        return Err(ck.fail(
            Some(raw.patterns.span()),
            "match is empty; list the tables this rule covers, like [\"sales.*\"]",
        ));
    }
    let mut patterns = Vec::new();
    for p in raw.patterns.into_inner() {
        let text = table_pattern("match", p.get_ref()).map_err(|m| ck.fail(Some(p.span()), m))?;
        patterns.push(text);
    }

    let settings = resolve_settings(
        cx,
        &section,
        RawSettings {
            approver_groups: raw.approver_groups,
            approvals: raw.approvals,
            default_duration: raw.default_duration,
            min_duration: raw.min_duration,
            max_duration: raw.max_duration,
            query_scan_cutoff: raw.query_scan_cutoff,
            scan_budget: raw.scan_budget,
            require_limit: raw.require_limit,
        },
        Some(defaults),
        header.clone(),
    )?;

    let mut sensitive_columns = Vec::new();
    for p in raw
        .sensitive_columns
        .map(Spanned::into_inner)
        .unwrap_or_default()
    {
        let text = p.get_ref().trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(ck.fail(Some(p.span()), "sensitive_columns: a pattern is empty"));
        }
        if text.contains('.') {
            return Err(ck.fail(
                Some(p.span()),
                format!(
                    "sensitive_columns pattern \"{}\" names a column, not a table: leave out the table, like \"salary\"",
                    p.get_ref().trim()
                ),
            ));
        }
        if !text.chars().all(is_glob_char) {
            return Err(ck.fail(
                Some(p.span()),
                format!(
                    "sensitive_columns pattern \"{}\" may use only letters, digits, _ and the wildcards * and ?",
                    p.get_ref().trim()
                ),
            ));
        }
        if !sensitive_columns.contains(&text) {
            sensitive_columns.push(text);
        }
    }

    let sensitive_approver_groups = match raw.sensitive_approver_groups {
        None => Vec::new(),
        Some(list) => {
            let span = list.span();
            let groups = ck.groups("sensitive_approver_groups", list, true)?;
            if !groups.is_empty() && sensitive_columns.is_empty() {
                return Err(ck.fail(
                    Some(span),
                    "sensitive_approver_groups is set but sensitive_columns is empty, so it would never apply",
                ));
            }
            if !groups.is_empty() && groups == settings.approver_groups {
                return Err(ck.fail(
                    Some(span),
                    "sensitive_approver_groups is the same as approver_groups, so it asks for nothing more: name another group, or leave it out and sensitive columns only rule out auto-approval",
                ));
            }
            groups
        }
    };

    let limited = |key: &str, raw: Option<Spanned<String>>| -> Result<Duration, PolicyFileError> {
        let Some(r) = raw else {
            return Ok(settings.max_duration);
        };
        let d = ck.duration(key, &r)?;
        if d > settings.max_duration {
            return Err(ck.fail(
                Some(r.span()),
                format!(
                    "{key} {} is longer than the rule's max_duration {}",
                    format_duration(d),
                    format_duration(settings.max_duration)
                ),
            ));
        }
        if d < settings.min_duration {
            return Err(ck.fail(
                Some(r.span()),
                format!(
                    "{key} {} is shorter than the rule's min_duration {}, so it could never apply",
                    format_duration(d),
                    format_duration(settings.min_duration)
                ),
            ));
        }
        Ok(d)
    };

    let auto_approve = match raw.auto_approve {
        None => None,
        Some(a) => {
            let a = a.into_inner();
            Some(AutoApproveRule {
                requester_groups: ck.groups(
                    "auto_approve.requester_groups",
                    a.requester_groups,
                    false,
                )?,
                max_duration: limited("auto_approve.max_duration", a.max_duration)?,
                agents: a.agents,
            })
        }
    };
    let break_glass = match raw.break_glass {
        None => None,
        Some(b) => {
            let b = b.into_inner();
            Some(BreakGlassRule {
                groups: ck.groups("break_glass.groups", b.groups, false)?,
                max_duration: limited("break_glass.max_duration", b.max_duration)?,
            })
        }
    };

    let notify = match raw.notify {
        None => NotifyRule::default(),
        Some(n) => {
            let n = n.into_inner();
            let slack_channel = match n.slack_channel {
                None => None,
                Some(c) => {
                    let channel = c.get_ref().trim();
                    if channel.is_empty() || channel.chars().any(char::is_whitespace) {
                        return Err(ck.fail(
                            Some(c.span()),
                            "notify.slack_channel must be a channel name or id, like \"#data-access\" or \"C0123456789\"",
                        ));
                    }
                    Some(channel.to_owned())
                }
            };
            let mut webhooks = Vec::new();
            for url in n.webhooks.map(Spanned::into_inner).unwrap_or_default() {
                let text = url.get_ref().trim();
                if !(text.starts_with("https://") || text.starts_with("http://"))
                    || text.chars().any(char::is_whitespace)
                {
                    return Err(ck.fail(
                        Some(url.span()),
                        "notify.webhooks: each must be an http:// or https:// URL",
                    ));
                }
                if !webhooks.iter().any(|w: &String| w == text) {
                    webhooks.push(text.to_owned());
                }
            }
            NotifyRule {
                slack_channel,
                webhooks,
            }
        }
    };

    Ok(Rule {
        name,
        patterns,
        settings,
        sensitive_columns,
        sensitive_approver_groups,
        auto_approve,
        break_glass,
        notify,
        line: cx.line_of(header.start),
    })
}

fn is_glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert!(looks_like("approver_group", "approver_groups"));
        assert!(looks_like("max", "max_duration"));
        assert!(looks_like("aprovals", "approvals"));
        assert!(!looks_like("colour", "approvals"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
