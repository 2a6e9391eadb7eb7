//! The whole request path as one call: bytes in, reply bytes out.
//!
//! [`Router`] ties intake validation, the tenant allow-list, idempotent replay, policy lookup
//! and the decision engine together. The service layer only moves bytes and counts.
//! Feedback is in [`crate::feedback`], replay in [`crate::idempotency`].

use std::collections::HashSet;

use rand::Rng;

use crate::decision::{Decision, DecisionEngine, Explanation, Reason, StickyMapping};
use crate::error::{ErrorCode, IntakeErrorCode, Rejection};
use crate::idempotency::{self, IdempotencyCache};
use crate::policy::PolicyStore;
use crate::quota::counted::{CountedRequest, Uncounted};
use crate::quota::QuotaBook;
use crate::record::DecisionRecord;
use crate::reply::{encode_error, encode_success, ReplyContext};
use crate::request::{self, IntakeLimits, RejectedRequest};

/// Settings of the request path.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Intake size limits.
    pub limits: IntakeLimits,
    /// When set, only these tenants are served; others get `unauthorized`.
    pub allowed_tenants: Option<HashSet<String>>,
    /// Most sticky sessions held (oldest evicted first).
    pub sticky_capacity: usize,
    /// Most idempotency keys held (oldest evicted first).
    pub idempotency_capacity: usize,
    /// How long a first decision is replayed for a repeated key.
    pub idempotency_ttl_ms: u64,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            limits: IntakeLimits::default(),
            allowed_tenants: None,
            sticky_capacity: 100_000,
            idempotency_capacity: 100_000,
            idempotency_ttl_ms: 10 * 60 * 1000,
        }
    }
}

/// What happened to one request, for metrics, logs and the DLQ.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A provider was chosen.
    Decided {
        /// Why.
        reason: Reason,
        /// True when an idempotent repeat returned the first decision.
        replayed: bool,
    },
    /// An error reply was sent.
    Rejected {
        /// The error code.
        code: ErrorCode,
        /// Set for intake failures (these go to the DLQ).
        intake: Option<IntakeErrorCode>,
        /// The tenant, when it could be read.
        tenant_id: Option<String>,
        /// The human message.
        message: String,
    },
    /// Nothing was answered: a quota's lease is on its way from the fleet. Wait for it
    /// (the sync task wakes the book's waiters), then call [`Router::handle_after_wait`].
    AwaitingLease,
}

/// The reply bytes and what they say.
#[derive(Debug, Clone)]
pub struct Handled {
    /// The JSON reply.
    pub reply: Vec<u8>,
    /// The outcome.
    pub outcome: Outcome,
    /// The sticky mapping this request recorded (a weighted draw for a session), set only
    /// when the router exports mappings ([`Router::with_sticky_export`]); `None` otherwise.
    pub sticky: Option<StickyMapping>,
    /// A first decision for an idempotency key, set only when the router shares them with
    /// a fleet ([`Router::with_idempotency_export`]); `None` otherwise.
    pub idempotent: Option<IdempotentDecision>,
    /// The quota that refused the request, as (scope, kind): (`tenant`, `rpm`), …
    pub quota_refusal: Option<(&'static str, &'static str)>,
    /// The record of this decision, when the router records decisions
    /// ([`Router::with_decision_records`]) and sampled this one, or when the caller asked
    /// for it ([`Router::handle_explained`]); `None` otherwise.
    pub record: Option<Box<DecisionRecord>>,
    /// True when [`Handled::record`] was sampled at the record ratio, to be kept; false
    /// when it was made only because the caller asked (a trace span's attributes).
    pub keep_record: bool,
}

/// A request's first decision for its idempotency key, to be offered to the fleet: when
/// another router decided the same (tenant, key) first, the reply becomes a replay of that
/// decision ([`Router::replay`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentDecision {
    /// The tenant.
    pub tenant_id: String,
    /// The request's `idempotency_key`.
    pub key: String,
    /// For the reply's context.
    pub request_id: String,
    /// For the reply's context.
    pub trace_id: Option<String>,
    /// What this router decided.
    pub decision: Decision,
}

/// The request path.
#[derive(Debug)]
pub struct Router {
    pub(crate) settings: RouterSettings,
    policies: PolicyStore,
    engine: DecisionEngine,
    idempotency: IdempotencyCache,
    export_sticky: bool,
    export_idempotency: bool,
    /// The share of decisions recorded (0: none).
    record_ratio: f64,
}

impl Router {
    /// A router with an empty policy store.
    pub fn new(settings: RouterSettings) -> Self {
        Router {
            engine: DecisionEngine::new(settings.sticky_capacity),
            idempotency: IdempotencyCache::new(settings.idempotency_capacity),
            policies: PolicyStore::new(),
            settings,
            export_sticky: false,
            export_idempotency: false,
            record_ratio: 0.0,
        }
    }

    /// Records about `ratio` of the decisions (0 to 1): [`Handled::record`] carries what
    /// each sampled decision weighed. Off (0) by default: nothing extra is built.
    pub fn with_decision_records(mut self, ratio: f64) -> Self {
        self.record_ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// True when this decision is to be recorded (drawn at the record ratio).
    fn samples_record(&self, rng: &mut impl Rng) -> bool {
        self.record_ratio >= 1.0
            || (self.record_ratio > 0.0 && rng.random::<f64>() < self.record_ratio)
    }

    /// With `export` true, [`Handled::idempotent`] carries each first decision for an
    /// idempotency key, so that the caller can settle it with other routers. Off by default.
    pub fn with_idempotency_export(mut self, export: bool) -> Self {
        self.export_idempotency = export;
        self
    }

    /// With `export` true, [`Handled::sticky`] carries each sticky mapping a decision records,
    /// so that the caller can share it with other routers. Off by default: nothing extra is
    /// built on the request path.
    pub fn with_sticky_export(mut self, export: bool) -> Self {
        self.export_sticky = export;
        self
    }

    /// Counts quotas with leases of the fleet's limits (taken by the service's sync task
    /// from the shared store) instead of alone. Call before any decision.
    pub fn with_leased_quotas(mut self) -> Self {
        self.engine.set_quota(QuotaBook::new(true));
        self
    }

    /// True when sticky mappings are exported.
    pub(crate) fn exports_sticky(&self) -> bool {
        self.export_sticky
    }

    /// The policy store (load, reload, upsert).
    pub fn policies(&self) -> &PolicyStore {
        &self.policies
    }

    /// The decision engine (breakers, sticky sessions).
    pub fn engine(&self) -> &DecisionEngine {
        &self.engine
    }

    /// Handles one decide request body and its `version` header.
    pub fn handle(
        &self,
        body: &[u8],
        version_header: Option<&str>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Handled {
        self.handle_scoped(body, version_header, None, now_ms, rng)
    }

    /// [`Router::handle`] for a request that arrived on a tenant's scoped subject: a body
    /// whose `tenant_id` is not `subject_tenant` is refused `unauthorized`
    /// (`TENANT_FORBIDDEN`), so a caller proven to be one tenant cannot decide as another.
    /// `None` is the unscoped subject of a trusted caller.
    pub fn handle_scoped(
        &self,
        body: &[u8],
        version_header: Option<&str>,
        subject_tenant: Option<&str>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Handled {
        self.handle_pass(
            body,
            version_header,
            subject_tenant,
            now_ms,
            rng,
            true,
            false,
        )
    }

    /// [`Router::handle_scoped`] (or, with `after_wait`, [`Router::handle_after_wait`]) that
    /// also explains the decision: [`Handled::record`] is set for every decision, and
    /// [`Handled::keep_record`] says whether it was sampled for keeping as well.
    pub fn handle_explained(
        &self,
        body: &[u8],
        version_header: Option<&str>,
        subject_tenant: Option<&str>,
        now_ms: u64,
        rng: &mut impl Rng,
        after_wait: bool,
    ) -> Handled {
        self.handle_pass(
            body,
            version_header,
            subject_tenant,
            now_ms,
            rng,
            !after_wait,
            true,
        )
    }

    /// [`Router::handle_scoped`] again for a request answered [`Outcome::AwaitingLease`],
    /// once the wait is over: a quota still without a lease now refuses.
    pub fn handle_after_wait(
        &self,
        body: &[u8],
        version_header: Option<&str>,
        subject_tenant: Option<&str>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Handled {
        self.handle_pass(
            body,
            version_header,
            subject_tenant,
            now_ms,
            rng,
            false,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_pass(
        &self,
        body: &[u8],
        version_header: Option<&str>,
        subject_tenant: Option<&str>,
        now_ms: u64,
        rng: &mut impl Rng,
        may_wait: bool,
        explain_always: bool,
    ) -> Handled {
        let request = match request::decode(body, version_header, &self.settings.limits) {
            Ok(request) => request,
            Err(rejected_request) => {
                let RejectedRequest {
                    rejection,
                    request_id,
                    trace_id,
                    tenant_id,
                } = *rejected_request;
                let context = ReplyContext {
                    request_id: request_id.as_deref(),
                    trace_id: trace_id.as_deref(),
                };
                return rejected(&rejection, context, tenant_id);
            }
        };
        let context = ReplyContext {
            request_id: Some(&request.request_id),
            trace_id: request.trace_id.as_deref(),
        };
        let tenant = || Some(request.tenant_id.to_string());

        if let Some(scope) = subject_tenant {
            if request.tenant_id != scope {
                let mut rejection = Rejection::new(
                    ErrorCode::Unauthorized,
                    format!(
                        "tenant_id {} does not match the tenant of the subject ({scope})",
                        request.tenant_id
                    ),
                )
                .with_detail("tenant_id", &*request.tenant_id)
                .with_detail("subject_tenant", scope);
                rejection.intake = Some(IntakeErrorCode::TenantForbidden);
                return rejected(&rejection, context, tenant());
            }
        }

        if let Some(allowed) = &self.settings.allowed_tenants {
            if !allowed.contains(&*request.tenant_id) {
                let mut rejection = Rejection::new(
                    ErrorCode::Unauthorized,
                    format!("tenant {} is not on the allow-list", request.tenant_id),
                )
                .with_detail("tenant_id", &*request.tenant_id);
                rejection.intake = Some(IntakeErrorCode::TenantForbidden);
                return rejected(&rejection, context, tenant());
            }
        }

        let mut refusal_tag = None;
        let mut awaiting = false;
        let keep_record = self.samples_record(rng);
        let mut explained =
            (keep_record || explain_always).then(|| (Explanation::default(), String::new()));
        let mut decide = |sticky: &mut Option<StickyMapping>| {
            let Some((policy, tenant_quota)) = self
                .policies
                .get_with_quota(&request.tenant_id, &request.policy_id)
            else {
                return Err(Rejection::new(
                    ErrorCode::PolicyNotFound,
                    format!(
                        "no policy {} for tenant {}",
                        request.policy_id, request.tenant_id
                    ),
                )
                .with_detail("tenant_id", &*request.tenant_id)
                .with_detail("policy_id", &*request.policy_id));
            };
            if let Some((_, version)) = &mut explained {
                version.clone_from(&policy.version);
            }
            let explain = explained.as_mut().map(|(explanation, _)| explanation);
            if tenant_quota.is_some() || policy.has_quotas() {
                let counted = CountedRequest {
                    policy: &policy,
                    tenant_quota,
                    tenant_id: &request.tenant_id,
                    context: &request.context,
                    now_ms,
                    may_wait,
                    explain,
                };
                return match self.decide_counted(counted, rng, sticky) {
                    Ok(decision) => Ok(decision),
                    Err(Uncounted::Refused(rejection, tag)) => {
                        refusal_tag = tag;
                        Err(rejection)
                    }
                    Err(Uncounted::AwaitingLease) => {
                        awaiting = true;
                        Err(Rejection::new(
                            ErrorCode::Internal,
                            "awaiting a quota lease",
                        ))
                    }
                };
            }
            let (decision, exported) = self.engine.decide_counted(
                &policy,
                &request.tenant_id,
                &request.context,
                now_ms,
                rng,
                self.export_sticky,
                None,
                explain,
            )?;
            *sticky = exported;
            Ok(decision)
        };
        let mut sticky = None;
        let decided = match request.idempotency_key.as_deref() {
            None => decide(&mut sticky).map(|decision| (decision, false)),
            Some(key) => self.idempotency.first_or_decide(
                idempotency::key(&request.tenant_id, key),
                now_ms,
                self.settings.idempotency_ttl_ms,
                || decide(&mut sticky),
            ),
        };
        match decided {
            Ok((decision, replayed)) => {
                let reply = encode_success(&decision, context, replayed);
                let idempotent = match (&request.idempotency_key, self.export_idempotency) {
                    (Some(key), true) if !replayed => Some(IdempotentDecision {
                        tenant_id: request.tenant_id.to_string(),
                        key: key.clone(),
                        request_id: request.request_id.to_string(),
                        trace_id: request.trace_id.as_deref().map(str::to_owned),
                        decision: decision.clone(),
                    }),
                    _ => None,
                };
                let record = match explained {
                    Some((explanation, version)) if !replayed => Some(Box::new(
                        DecisionRecord::new(&request, &decision, &version, explanation, now_ms),
                    )),
                    _ => None,
                };
                Handled {
                    reply,
                    outcome: Outcome::Decided {
                        reason: decision.reason,
                        replayed,
                    },
                    sticky,
                    idempotent,
                    quota_refusal: None,
                    keep_record: keep_record && record.is_some(),
                    record,
                }
            }
            Err(_) if awaiting => Handled {
                reply: Vec::new(),
                outcome: Outcome::AwaitingLease,
                sticky: None,
                idempotent: None,
                quota_refusal: None,
                record: None,
                keep_record: false,
            },
            Err(rejection) => {
                let mut handled = rejected(&rejection, context, tenant());
                handled.quota_refusal = refusal_tag;
                handled
            }
        }
    }

    /// The reply that replays `first` (a fleet's first decision for a key) for the request
    /// of `ours`.
    pub fn replay(&self, ours: &IdempotentDecision, first: &Decision) -> Handled {
        let context = ReplyContext {
            request_id: Some(&ours.request_id),
            trace_id: ours.trace_id.as_deref(),
        };
        Handled {
            reply: encode_success(first, context, true),
            outcome: Outcome::Decided {
                reason: first.reason,
                replayed: true,
            },
            sticky: None,
            idempotent: None,
            quota_refusal: None,
            record: None,
            keep_record: false,
        }
    }

    /// Keeps a fleet's first decision for (tenant, key) as this router's own, so that a
    /// repeat here replays it without asking the fleet again.
    pub fn remember_first(&self, tenant_id: &str, key: &str, first: Decision, now_ms: u64) {
        self.idempotency.remember(
            idempotency::key(tenant_id, key),
            first,
            now_ms,
            self.settings.idempotency_ttl_ms,
        );
    }

    /// How long a first decision is replayed, in milliseconds.
    pub fn idempotency_ttl_ms(&self) -> u64 {
        self.settings.idempotency_ttl_ms
    }

    /// The `overloaded` reply for a request refused under backpressure. Reads only the
    /// request's ids from the body (`request_id` or the gateway's `message.message_id`, and a
    /// valid `trace_id`), without validating it.
    pub fn overloaded(&self, body: &[u8], retry_after_seconds: u64) -> Handled {
        let ids = request::peek_ids(body);
        let rejection = Rejection::new(
            ErrorCode::Overloaded,
            "the router is overloaded; retry later",
        )
        .with_detail("retry_after_seconds", retry_after_seconds);
        let context = ReplyContext {
            request_id: ids.request_id.as_deref(),
            trace_id: ids.trace_id.as_deref(),
        };
        rejected(&rejection, context, None)
    }

    /// The `internal` reply, for a request whose handling failed unexpectedly (with the ids
    /// [`Router::overloaded`] reads).
    pub fn internal_error(&self, body: &[u8]) -> Handled {
        let ids = request::peek_ids(body);
        let rejection = Rejection::new(ErrorCode::Internal, "internal error; see the router log");
        let context = ReplyContext {
            request_id: ids.request_id.as_deref(),
            trace_id: ids.trace_id.as_deref(),
        };
        rejected(&rejection, context, None)
    }
}

fn rejected(
    rejection: &Rejection,
    context: ReplyContext<'_>,
    tenant_id: Option<String>,
) -> Handled {
    Handled {
        reply: encode_error(rejection, context),
        outcome: Outcome::Rejected {
            code: rejection.code,
            intake: rejection.intake,
            tenant_id,
            message: rejection.message.clone(),
        },
        sticky: None,
        idempotent: None,
        quota_refusal: None,
        record: None,
        keep_record: false,
    }
}
