//! `GET /metrics`: the Prometheus text format. Per plugin version: calls,
//! errors by kind, the latency histogram, instances, peak memory, fuel,
//! state; per plugin: reloads and the canary's share; audit entries by
//! kind; and the server's own requests by route and status with their
//! durations.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::AppState;
use warden::Warden;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The server's request counters, and the registry they and the plugins'
/// metrics are encoded from.
pub(crate) struct HttpMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    pub(crate) fn new(warden: Arc<Warden>) -> Self {
        let mut registry = Registry::with_prefix("warden");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0,
            ])
        });
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            durations.clone(),
        );
        registry.register_collector(Box::new(PluginCollector { warden }));
        HttpMetrics {
            registry,
            requests,
            durations,
        }
    }

    /// Counts one answered request.
    pub(crate) fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The Prometheus metrics: plugin versions (calls, errors by kind,
/// latency, instances, memory, fuel, state), reloads, canary shares, audit
/// entries and the server's requests.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The Prometheus text format", body = String,
               content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.http.registry) {
        Ok(()) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(e) => super::problem::Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "host-error",
            format!("encoding the metrics: {e}"),
        )
        .into_response(),
    }
}

/// Reads every loaded version's metrics at scrape time.
#[derive(Debug)]
struct PluginCollector {
    warden: Arc<Warden>,
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: a name, help, type and its samples.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram whose bucket counts were counted elsewhere.
#[derive(Debug)]
struct CountedHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for CountedHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let deployments = self.warden.deployments();
        let versions: Vec<_> = deployments
            .iter()
            .flat_map(|d| d.versions.iter().map(move |v| (d, v)))
            .collect();
        let labels = |plugin: &str, version: &semver::Version| -> Labels {
            vec![
                ("plugin", plugin.to_string()),
                ("version", version.to_string()),
            ]
        };
        let per_version = |value: fn(&warden::VersionMetrics) -> u64| {
            versions
                .iter()
                .map(move |(d, v)| (labels(&d.plugin, &v.version), value(&v.metrics)))
                .collect::<Vec<_>>()
        };
        // A counter per version and per key of one of its maps, the key
        // under `label`.
        let per_version_and = |label: &'static str,
                               map: fn(
            &warden::VersionMetrics,
        ) -> &std::collections::BTreeMap<String, u64>| {
            versions
                .iter()
                .flat_map(move |(d, v)| {
                    map(&v.metrics).iter().map(move |(key, n)| {
                        let mut l = labels(&d.plugin, &v.version);
                        l.push((label, key.clone()));
                        (l, ConstCounter::new(*n))
                    })
                })
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "plugin_calls",
            "Calls made into a plugin version",
            MetricType::Counter,
            per_version(|m| m.calls)
                .into_iter()
                .map(|(l, n)| (l, ConstCounter::new(n))),
        )?;
        family(
            &mut encoder,
            "plugin_errors",
            "Failed calls of a plugin version, by kind (plugin, trap:<kind>, busy, limit, unavailable, host)",
            MetricType::Counter,
            per_version_and("kind", |m| &m.errors),
        )?;
        family(
            &mut encoder,
            "plugin_call_duration_seconds",
            "Time calls into a plugin version took, waiting for an instance included",
            MetricType::Histogram,
            versions.iter().map(|(d, v)| {
                let h = &v.metrics.latency;
                let buckets = h
                    .bounds
                    .iter()
                    .map(|b| b.as_secs_f64())
                    .chain([f64::MAX])
                    .zip(h.counts.iter().copied())
                    .collect();
                (
                    labels(&d.plugin, &v.version),
                    CountedHistogram {
                        sum: h.sum.as_secs_f64(),
                        count: h.count,
                        buckets,
                    },
                )
            }),
        )?;
        for (name, help, value) in [
            (
                "plugin_instances_busy",
                "Instances of a plugin version running a call now",
                (|m| m.instances_busy) as fn(&warden::VersionMetrics) -> u64,
            ),
            (
                "plugin_instances_idle",
                "Instances of a plugin version idle in its pool now",
                |m| m.instances_idle,
            ),
            (
                "plugin_peak_memory_bytes",
                "The largest linear memory an instance of a plugin version reached",
                |m| m.peak_memory,
            ),
            (
                "plugin_memory_bytes",
                "The linear memory every live instance of a plugin version holds now",
                |m| m.memory_bytes,
            ),
            (
                "plugin_code_bytes",
                "The compiled code of a plugin version, mapped in the host's memory",
                |m| m.code_bytes,
            ),
        ] {
            family(
                &mut encoder,
                name,
                help,
                MetricType::Gauge,
                per_version(value)
                    .into_iter()
                    .map(|(l, n)| (l, ConstGauge::new(n as i64))),
            )?;
        }
        family(
            &mut encoder,
            "plugin_instances_created",
            "Instances of a plugin version created so far",
            MetricType::Counter,
            per_version(|m| m.instances_created)
                .into_iter()
                .map(|(l, n)| (l, ConstCounter::new(n))),
        )?;
        family(
            &mut encoder,
            "plugin_instances_recycled",
            "Instances of a plugin version retired while healthy, before they could fail a call",
            MetricType::Counter,
            per_version(|m| m.instances_recycled)
                .into_iter()
                .map(|(l, n)| (l, ConstCounter::new(n))),
        )?;
        family(
            &mut encoder,
            "plugin_capability_calls",
            "Calls of a plugin version's instances into a host capability (logging, config, kv, http, events, links, the embedder's)",
            MetricType::Counter,
            per_version_and("capability", |m| &m.capability_calls),
        )?;
        family(
            &mut encoder,
            "plugin_fuel_used",
            "Fuel burnt by calls into a plugin version (when the host meters fuel)",
            MetricType::Counter,
            versions.iter().filter_map(|(d, v)| {
                Some((
                    labels(&d.plugin, &v.version),
                    ConstCounter::new(v.metrics.fuel_used?),
                ))
            }),
        )?;
        family(
            &mut encoder,
            "plugin_up",
            "1 for a plugin version that is ready to take calls, else 0; `state` names its lifecycle state",
            MetricType::Gauge,
            versions.iter().map(|(d, v)| {
                let mut l = labels(&d.plugin, &v.version);
                l.push(("state", v.state.to_string()));
                l.push(("role", role(v.role).to_string()));
                let up = i64::from(v.state == warden::State::Ready);
                (l, ConstGauge::new(up))
            }),
        )?;
        family(
            &mut encoder,
            "plugin_canary_share_ratio",
            "The share of a plugin's unqualified calls its canary candidate gets (0 without a canary)",
            MetricType::Gauge,
            deployments.iter().map(|d| {
                let share = d.canary.as_ref().map_or(0.0, |c| c.percent / 100.0);
                (vec![("plugin", d.plugin.clone())], ConstGauge::new(share))
            }),
        )?;
        let reloads = self.warden.reload_stats();
        family(
            &mut encoder,
            "plugin_reloads",
            "Reloads of a plugin since the server started, by outcome (replaced, failed)",
            MetricType::Counter,
            reloads.iter().flat_map(|(plugin, stats)| {
                [("replaced", stats.replaced), ("failed", stats.failed)].map(|(outcome, n)| {
                    (
                        vec![("plugin", plugin.clone()), ("outcome", outcome.to_string())],
                        ConstCounter::new(n),
                    )
                })
            }),
        )?;
        family(
            &mut encoder,
            "audit_entries",
            "Audit log entries recorded since the server started, by kind",
            MetricType::Counter,
            self.warden.audit().recorded().into_iter().map(|(kind, n)| {
                (
                    vec![("kind", kind.as_str().to_string())],
                    ConstCounter::new(n),
                )
            }),
        )?;
        Ok(())
    }
}

fn role(role: warden::Role) -> &'static str {
    match role {
        warden::Role::Stable => "stable",
        warden::Role::Candidate => "candidate",
        warden::Role::Pinned => "pinned",
    }
}
