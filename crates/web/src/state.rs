//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use lakegate_app::Services;

use crate::WebConfig;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub config: Arc<WebConfig>,
}

impl AppState {
    pub fn new(services: Services, config: WebConfig) -> Self {
        Self {
            services,
            config: Arc::new(config),
        }
    }
}

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Self {
        state.services.clone()
    }
}
