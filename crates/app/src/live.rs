//! The live-grants view (docs/decisions/0024-live-grants-in-memory.md): what the credentials
//! URL needs of every active grant, in this replica's memory, so a fetch reads no database.
//! It is kept fresh by PostgreSQL `LISTEN/NOTIFY` (a committed change to a grant's status,
//! expiry, token or role is announced with its id, and re-read at once), with a full re-read
//! every 30 seconds as the safety net. While the notification stream is down the view is not
//! trusted at all: every fetch reads PostgreSQL, as if there were no view, and answers
//! `503` if PostgreSQL does not answer either. Never stale credentials.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lakegate_domain::RequestId;
use lakegate_store::requests::{self, CredentialsView};
use tokio_util::sync::CancellationToken;

use crate::{AppError, Services};

/// How often the whole view is read again, whatever the notifications said.
const FULL_READ_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    /// Listening, and read in full since: the view may be trusted.
    trusted: bool,
    grants: HashMap<RequestId, Arc<CredentialsView>>,
}

/// The active grants' credentials facts, shared by every handler of this replica.
#[derive(Clone, Default)]
pub struct LiveGrants(Arc<RwLock<Inner>>);

impl std::fmt::Debug for LiveGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("LiveGrants")
            .field("trusted", &inner.trusted)
            .field("grants", &inner.grants.len())
            .finish()
    }
}

impl LiveGrants {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The grant's facts if the view is trusted and the grant is active in it. `None` says
    /// nothing: the caller reads PostgreSQL.
    pub fn active(&self, id: RequestId) -> Option<Arc<CredentialsView>> {
        let inner = self.read();
        if inner.trusted {
            inner.grants.get(&id).cloned()
        } else {
            None
        }
    }

    /// Whether fetches are answered from memory.
    pub fn is_trusted(&self) -> bool {
        self.read().trusted
    }

    pub fn len(&self) -> usize {
        self.read().grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This replica changed the grant: forget it until it is read again, so its own next
    /// fetch reads PostgreSQL rather than wait for the notification.
    pub fn forget(&self, id: RequestId) {
        self.write().grants.remove(&id);
    }

    fn distrust(&self) {
        let mut inner = self.write();
        inner.trusted = false;
        inner.grants.clear();
    }

    fn replace(&self, grants: Vec<(RequestId, CredentialsView)>) {
        let mut inner = self.write();
        inner.grants = grants
            .into_iter()
            .map(|(id, view)| (id, Arc::new(view)))
            .collect();
        inner.trusted = true;
    }

    fn put(&self, id: RequestId, view: Option<CredentialsView>) {
        let mut inner = self.write();
        match view.filter(|v| v.status == lakegate_domain::RequestStatus::Active) {
            Some(v) => inner.grants.insert(id, Arc::new(v)),
            None => inner.grants.remove(&id),
        };
    }
}

async fn read_all(svc: &Services) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    let all = requests::active_credentials_views(&mut conn).await?;
    svc.live.replace(all);
    Ok(())
}

async fn read_one(svc: &Services, id: RequestId) -> Result<(), AppError> {
    let mut conn = svc.db.acquire().await?;
    let view = requests::credentials_view(&mut conn, id).await?;
    svc.live.put(id, view);
    Ok(())
}

/// Keeps [`Services::live`] fresh until cancelled: listens, reads every active grant, then
/// applies each announced change, re-reading everything every 30 seconds. Any failure
/// distrusts the view (fetches read PostgreSQL) until it has listened and read it all again.
pub async fn run(svc: Services, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    loop {
        // Listen first, then read: a change committed in between is announced and re-read.
        let listened = async {
            let listener = requests::listen_grants(&svc.db).await?;
            read_all(&svc).await?;
            Ok::<_, AppError>(listener)
        };
        let mut listener = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listened => match r {
                Ok(l) => l,
                Err(e) => {
                    svc.live.distrust();
                    tracing::warn!(error = %e, "live grants: cannot listen for changes; every credentials fetch reads the database");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(200);
        tracing::info!(
            grants = svc.live.len(),
            "live grants: listening; credentials are answered from memory"
        );
        let mut full = tokio::time::interval(FULL_READ_EVERY);
        full.tick().await;
        let failure: AppError = loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = full.tick() => if let Err(e) = read_all(&svc).await { break e },
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => match n.payload().parse::<uuid::Uuid>() {
                        Ok(id) => if let Err(e) = read_one(&svc, RequestId(id)).await { break e },
                        Err(_) => tracing::warn!(payload = n.payload(), "live grants: an announcement without a request id"),
                    },
                    // The connection was lost: what was announced meanwhile is lost too.
                    Ok(None) => break AppError::Unavailable("the database connection was lost".into()),
                    Err(e) => break AppError::from(lakegate_store::StoreError::from(e)),
                },
            }
        };
        svc.live.distrust();
        tracing::warn!(error = %failure, "live grants: lost the change notifications; every credentials fetch reads the database until they are back");
    }
}
