//! Reading SQL text exactly as Athena (Trino) does.
//!
//! Athena engine 3 reads a statement with Trino's lexer (`SqlBase.g4`): unquoted identifiers
//! of ASCII letters, digits and `_`; `"…"` identifiers with `""` for a quote; `'…'` strings
//! with `''` for a quote and no backslash escapes; `X'…'` binary literals; `--` comments that
//! end at a carriage return or a line feed; `/* … */` comments that do not nest and carry no
//! hints; whitespace of space, tab, carriage return and line feed only; and a short list of
//! operators. `sqlparser` has no Trino dialect, and its generic one accepts far more (MySQL
//! hints, nested comments, `E'…'`, `$…$`, `#` comments, `@` and `$` in names, backquotes), each
//! a way for text to mean one thing to the guard and another to Athena.
//!
//! So the guard reads with [`TrinoDialect`], which turns every such switch off, and then
//! [`lexical_check`] holds the token stream to Trino's lexer: every token kind Trino has not
//! got is refused, as are the spots where the two lexers split the same text differently.
//! What is left means the same to both; and what runs is the guard's own rendering of the
//! parsed statement anyway (see `docs/decisions/0013-sql-guard-reads-as-trino.md`).

use std::any::TypeId;

use sqlparser::dialect::{Dialect, GenericDialect};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

use super::Refusal;

/// The subset of SQL that Athena's lexer and the guard read alike.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrinoDialect;

impl Dialect for TrinoDialect {
    /// The parser keeps some grammar for "the generic dialect" alone (`UNNEST`, `CURRENT_USER`,
    /// …) that Trino shares, so the dialect presents itself as that one to the grammar. The
    /// switches below are its own all the same, and the three places where the tokenizer treats
    /// the generic dialect specially (`B'…'`, `R'…'`, `//`) yield tokens [`lexical_check`]
    /// refuses.
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || ch == '_'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        // Trino refuses backquoted identifiers; only `"` quotes a name.
        ch == '"'
    }

    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('"')
    }

    // Trino's own syntax, which the parser only reads when asked.
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_window_clause_named_window_reference(&self) -> bool {
        true
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        true
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        true
    }

    fn supports_map_typedef_with_parentheses(&self) -> bool {
        true
    }

    fn supports_array_typedef_with_parentheses(&self) -> bool {
        true
    }

    fn supports_parens_around_table_factor(&self) -> bool {
        true
    }

    fn supports_left_associative_joins_without_parens(&self) -> bool {
        true
    }

    fn supports_window_function_null_treatment_arg(&self) -> bool {
        true
    }

    // Everything below is a default already; spelled out because each is a way the generic
    // dialect reads text that Trino reads otherwise, and must stay off.
    fn supports_nested_comments(&self) -> bool {
        false
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        false
    }

    fn supports_hash_comment(&self) -> bool {
        false
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        false
    }

    fn supports_string_escape_constant(&self) -> bool {
        false
    }

    fn supports_dollar_placeholder(&self) -> bool {
        false
    }

    fn supports_quote_delimited_string(&self) -> bool {
        false
    }

    fn supports_triple_quoted_string(&self) -> bool {
        false
    }

    fn supports_unicode_string_literal(&self) -> bool {
        false
    }

    fn supports_unterminated_block_comments(&self) -> bool {
        false
    }

    fn supports_string_literal_concatenation(&self) -> bool {
        false
    }

    fn supports_trailing_commas(&self) -> bool {
        false
    }

    fn supports_projection_trailing_commas(&self) -> bool {
        false
    }

    fn supports_limit_comma(&self) -> bool {
        false
    }
}

/// Holds the tokens of `sql` to what Trino's lexer produces from the same text. Returns the
/// number of significant tokens (not whitespace, comments or the end).
pub(crate) fn lexical_check(sql: &str, tokens: &[TokenWithSpan]) -> Result<usize, Refusal> {
    let source = Source::new(sql);
    let mut significant = 0;
    let mut previous: Option<&Token> = None;
    for spanned in tokens {
        let token = &spanned.token;
        let first = source.char_at(spanned.span.start);
        match token {
            Token::Whitespace(space) => {
                // The tokenizer calls any Unicode space a space; Trino knows four.
                if matches!(space, Whitespace::Space)
                    && !matches!(first, Some(' ' | '\t' | '\r' | '\n'))
                {
                    return Err(Refusal::Lexical(format!(
                        "a space character other than a space, a tab or a line break ({})",
                        first.map_or("?".into(), |c| format!("U+{:04X}", u32::from(c)))
                    )));
                }
                whitespace(space)?;
                // Whitespace separates: `1 e5` is two tokens to both lexers.
                previous = None;
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        significant += 1;
        if let (Some(Token::Number(..)), Token::Word(word)) = (previous, token)
            && word.quote_style.is_none()
        {
            // `0x1F`, `1_a`, `12abc`: one token to Trino (a hexadecimal number, or an
            // identifier it refuses), two here (a number and an alias).
            return Err(Refusal::Lexical(format!(
                "`{}` right after a number",
                word.value
            )));
        }
        if matches!(token, Token::HexStringLiteral(_)) && !matches!(first, Some('x' | 'X')) {
            // `0x1F` is a hexadecimal integer to Trino, a binary string here.
            return Err(Refusal::Lexical(
                "a hexadecimal number (`0x…`); write it in decimal".into(),
            ));
        }
        if let Token::HexStringLiteral(s) = token
            && s.contains('\'')
        {
            // Trino's binary literal `X'…'` ends at the first quote, with no `''` escape: what
            // the tokenizer read as one literal is a literal and a string to Trino.
            return Err(Refusal::Lexical(
                "a quote inside a binary literal `X'…'`".into(),
            ));
        }
        if !trino_token(token) {
            return Err(Refusal::Lexical(format!("`{token}`")));
        }
        previous = Some(token);
    }
    Ok(significant)
}

/// The text, by line, to find the character a token starts with. The tokenizer counts lines
/// at each `\n` and columns in characters, from 1.
struct Source {
    lines: Vec<Vec<char>>,
}

impl Source {
    fn new(sql: &str) -> Self {
        Self {
            lines: sql.split('\n').map(|l| l.chars().collect()).collect(),
        }
    }

    fn char_at(&self, at: Location) -> Option<char> {
        let line = self
            .lines
            .get(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
        line.get(usize::try_from(at.column).ok()?.checked_sub(1)?)
            .copied()
            .or(Some('\n'))
    }
}

fn whitespace(space: &Whitespace) -> Result<(), Refusal> {
    match space {
        Whitespace::Space | Whitespace::Tab | Whitespace::Newline => Ok(()),
        Whitespace::SingleLineComment { comment, prefix } => {
            if prefix != "--" {
                return Err(Refusal::Lexical(format!("a `{prefix}` comment")));
            }
            // Trino ends a `--` comment at a carriage return as well as at a line feed; text
            // after a lone `\r` would be SQL to Athena and comment here.
            if comment.trim_end_matches(['\r', '\n']).contains('\r') {
                return Err(Refusal::Lexical(
                    "a carriage return inside a `--` comment".into(),
                ));
            }
            Ok(())
        }
        Whitespace::MultiLineComment(body) => {
            if body.contains("/*") {
                return Err(Refusal::NestedComment);
            }
            Ok(())
        }
    }
}

/// Token kinds Trino's lexer has (or its parser spells out as literals: `[`, `]`, `->`, `=>`).
fn trino_token(token: &Token) -> bool {
    match token {
        Token::Word(word) => match word.quote_style {
            None => word
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            Some('"') => true,
            Some(_) => false,
        },
        Token::Number(text, long) => {
            !long
                && text
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | 'e' | 'E' | '+' | '-'))
        }
        Token::SingleQuotedString(_) | Token::HexStringLiteral(_) => true,
        Token::Comma
        | Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::LBracket
        | Token::RBracket
        | Token::Arrow
        | Token::RArrow => true,
        _ => false,
    }
}
