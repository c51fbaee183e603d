//! `/api/v1/alerts`: the alert rules (`[[alert]]`), what each has firing and its last
//! evaluation (the rules run in `crate::alerts`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState, alerts};

/// `GET /api/v1/alerts`: every rule with its firing alerts and last evaluation; with
/// tenancy, only the alerts about the caller's tenant's series.
pub(crate) async fn list(
    State(st): State<Arc<AppState>>,
    tenant: Option<axum::Extension<crate::access::Tenant>>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let mut state = st.alerts.state();
    if let Some(axum::Extension(t)) = tenant {
        for s in state.values_mut() {
            s.firing.retain(|a| t.owns_labels(&a.alert.labels));
        }
    }
    let rules: Vec<serde_json::Value> = st
        .alerts
        .rules()
        .iter()
        .map(|r| {
            let s = state.get(&r.name).cloned().unwrap_or_default();
            serde_json::json!({
                "name": r.name,
                "when": r.when,
                "query": r.query,
                "above": r.threshold(),
                "unit": alerts::unit(&r.when),
                "window_seconds": r.window().as_secs(),
                "webhooks": r.webhook.len(),
                "firing": s.firing,
                "last_evaluation_ms": s.last_evaluation_ms,
                "last_error": s.last_error,
            })
        })
        .collect();
    Ok(axum::Json(rules).into_response())
}
