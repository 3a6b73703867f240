//! What people (and agents acting for them) may ask for: the Glue catalog's tables that the
//! policy makes requestable, with their columns and which of them the policy calls sensitive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lakegate_domain::Principal;
use lakegate_domain::policy_file::{RequestFacts, TableFacts};
use lakegate_domain::ports::TableInfo;
use time::Duration;

use crate::{AppError, Services};

/// The most tables one listing reads from the catalog.
pub const LIST_LIMIT: usize = 500;

/// How long a listing of the catalog is reused: the picker asks at every keystroke, and Glue
/// changes rarely (a submission checks each table afresh).
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

type Cached = Arc<(Vec<TableInfo>, bool)>;
/// Listings by database (`None`: every database), with when each was read.
type Listings = HashMap<Option<String>, (Instant, Cached)>;

/// Recent listings of the catalog.
#[derive(Debug, Clone, Default)]
pub struct ListingCache(Arc<Mutex<Listings>>);

impl ListingCache {
    async fn list(&self, svc: &Services, database: Option<&str>) -> Result<Cached, AppError> {
        let key = database.map(ToOwned::to_owned);
        if let Ok(cache) = self.0.lock()
            && let Some((at, listing)) = cache.get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(Arc::clone(listing));
        }
        let listing = Arc::new(svc.cloud.list_tables(database, LIST_LIMIT).await?);
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            cache.insert(key, (Instant::now(), Arc::clone(&listing)));
        }
        Ok(listing)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    pub data_type: String,
    /// The policy calls it sensitive: asking for it needs more approval.
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    pub database: String,
    pub table: String,
    /// Columns, then partition keys.
    pub columns: Vec<CatalogColumn>,
    /// The rules that apply to it (`defaults` when none does).
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub tables: Vec<CatalogTable>,
    /// The catalog holds more than was read; narrow the search.
    pub truncated: bool,
}

/// The requestable tables of `database` (or of every database) whose `database.table` name
/// contains `search`, case-insensitively.
pub async fn requestable(
    svc: &Services,
    who: &Principal,
    database: Option<&str>,
    search: Option<&str>,
) -> Result<Listing, AppError> {
    let cached = svc.catalog.list(svc, database).await?;
    let (tables, truncated) = (&cached.0, cached.1);
    let needle = search
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let policy = &svc.settings.policy;
    let mut listing = Listing {
        tables: Vec::new(),
        truncated,
    };
    for t in tables {
        if !policy.is_requestable(&t.database, &t.name) {
            continue;
        }
        if let Some(n) = &needle
            && !format!("{}.{}", t.database, t.name)
                .to_lowercase()
                .contains(n)
        {
            continue;
        }
        let names: Vec<String> = t.column_names().map(str::to_owned).collect();
        let evaluation = policy.evaluate(&RequestFacts::new(
            who,
            Duration::hours(1),
            vec![TableFacts {
                database: t.database.clone(),
                table: t.name.clone(),
                columns: names,
            }],
        ));
        let columns = t
            .columns
            .iter()
            .chain(&t.partition_keys)
            .map(|c| CatalogColumn {
                sensitive: evaluation
                    .sensitive_columns
                    .iter()
                    .any(|s| s.column == c.name || s.column == "*"),
                name: c.name.clone(),
                data_type: c.data_type.clone(),
            })
            .collect();
        listing.tables.push(CatalogTable {
            rules: evaluation
                .tables
                .first()
                .map(|r| r.rules.clone())
                .unwrap_or_default(),
            database: t.database.clone(),
            table: t.name.clone(),
            columns,
        });
    }
    Ok(listing)
}
