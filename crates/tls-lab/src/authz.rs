//! The authorization cases: who may do what once connected, against the shipped
//! `config/nats_tls.conf` (nats-server maps each certificate to a user with permissions) and
//! the running router (which refuses a tenant's subject carrying another tenant's body).
//!
//! A refusal by nats-server passes only when the server reported a permissions violation for
//! the subject of the case; a refusal by the router only when it answered `unauthorized` and
//! its `router_tenant_scope_refusals_total` counter rose. Every denied case has an allowed
//! twin (the operator writes the policy the caller could not, a tenant decides on its own
//! subject), so a server that refuses everything fails too.

mod checks;
mod identities;
mod session;

use std::path::Path;

use certs::BundlePaths;
use nats_harness::RouterProcess;
use router_bin::config::Subjects;

use crate::log::RunLog;
use crate::result::CaseResult;
use crate::target::Target;
use checks::{
    body, decide, feedback, js_denied, ok_true, operator_work, refused_by_router, request,
    router_with_wrong_role, scope_refusals, steal_decide, violation,
};
use identities::Identities;
use session::Session;

/// The subjects of the default prefix.
const PREFIX: &str = "beamline.router";

/// The results of one case: name, what must happen, what happened.
struct Row {
    results: Vec<CaseResult>,
}

impl Row {
    fn record(
        &mut self,
        log: &mut RunLog,
        name: &str,
        expected: &str,
        outcome: Result<String, String>,
    ) {
        let (pass, observed) = match outcome {
            Ok(observed) => (true, observed),
            Err(observed) => (false, observed),
        };
        log.line(&format!("authz {name}: {observed}"));
        self.results
            .push(CaseResult::new(name, expected, &observed, pass));
    }
}

/// Runs every authorization case against `main`, where `router` serves the default prefix.
pub async fn run(
    server_tls: &BundlePaths,
    certs_dir: &Path,
    main: Target,
    router: &RouterProcess,
    router_binary: &Path,
    log: &mut RunLog,
) -> Vec<CaseResult> {
    let mut row = Row {
        results: Vec::new(),
    };
    let ids = match Identities::issue(server_tls, certs_dir) {
        Ok(ids) => ids,
        Err(err) => {
            row.record(
                log,
                "authorization certificates",
                "issued",
                Err(format!("{err:#}")),
            );
            return row.results;
        }
    };
    let subjects = Subjects::new(PREFIX);
    let (acme, operator, internal) = (
        Session::open(main, &ids.ca, &ids.acme, "acme").await,
        Session::open(main, &ids.ca, &ids.operator, "operator").await,
        Session::open(main, &ids.ca, &ids.internal, "internal").await,
    );
    let (acme, operator, internal) = match (acme, operator, internal) {
        (Ok(acme), Ok(operator), Ok(internal)) => (acme, operator, internal),
        (acme, operator, internal) => {
            let why = [acme.err(), operator.err(), internal.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            row.record(
                log,
                "tenant, operator and internal callers connect",
                "connected",
                Err(why),
            );
            return row.results;
        }
    };

    // Deciding.
    let outcome = decide(&acme, &subjects.decide_for("acme"), "acme").await;
    row.record(
        log,
        "tenant acme decides on its subject",
        "ok:true",
        ok_true(outcome),
    );
    let before = scope_refusals(router, "decide");
    let outcome = decide(&acme, &subjects.decide_for("acme"), "globex").await;
    let after = scope_refusals(router, "decide");
    row.record(
        log,
        "tenant acme asks for globex on its subject",
        "router: unauthorized, refusal counted",
        refused_by_router(outcome, before, after),
    );
    let subject = subjects.decide_for("globex");
    acme.forget_errors();
    let _ = acme
        .client
        .publish(subject.clone(), body("globex").into())
        .await;
    row.record(
        log,
        "tenant acme publishes on globex's subject",
        "server: publish violation",
        violation(&acme, "Publish", &format!("{subject}\"")).await,
    );
    let outcome = decide(&internal, &subjects.decide, "globex").await;
    row.record(
        log,
        "internal caller decides any tenant (unscoped)",
        "ok:true",
        ok_true(outcome),
    );
    row.record(
        log,
        "tenant acme subscribes to the decide subject",
        "server: subscription violation, 0 requests delivered",
        steal_decide(&acme, &internal, &subjects.decide).await,
    );
    let subject = "_INBOX.tenant.globex.>";
    acme.forget_errors();
    let _ = acme.client.subscribe(subject).await;
    row.record(
        log,
        "tenant acme subscribes to globex's replies",
        "server: subscription violation",
        violation(&acme, "Subscription", &format!("{subject}\"")).await,
    );

    // Feedback.
    let subject = subjects.feedback_for("globex");
    acme.forget_errors();
    let _ = acme
        .client
        .publish(subject.clone(), feedback("globex").into())
        .await;
    row.record(
        log,
        "tenant acme reports on globex's feedback subject",
        "server: publish violation",
        violation(&acme, "Publish", &format!("{subject}\"")).await,
    );
    let before = scope_refusals(router, "feedback");
    let answer = request(&acme, &subjects.feedback_for("acme"), feedback("globex")).await;
    let after = scope_refusals(router, "feedback");
    row.record(
        log,
        "tenant acme reports globex failures on its subject",
        "router: unauthorized, refusal counted",
        refused_by_router(answer, before, after),
    );

    // Policies and dead letters.
    row.record(
        log,
        "tenant acme writes a policy",
        "server: publish violation ($JS.API)",
        js_denied(&acme, |js| async move {
            js.create_key_value(router_bin::fleet::buckets::policy_bucket(1))
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "internal caller reads the DLQ",
        "server: publish violation ($JS.API)",
        js_denied(&internal, |js| async move {
            js.get_stream(router_bin::service::dlq::STREAM)
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "tenant acme reads the DLQ",
        "server: publish violation ($JS.API)",
        js_denied(&acme, |js| async move {
            js.get_stream(router_bin::service::dlq::STREAM)
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "operator writes and deletes a policy, reads the DLQ",
        "allowed",
        operator_work(&operator).await,
    );

    // Certificates without the right role.
    let outcome = Session::open(main, &ids.ca, &ids.roleless, "roleless").await;
    row.record(
        log,
        "certificate from the CA without a role",
        "server: Authorization Violation",
        match outcome {
            Err(err) if err.contains("uthorization") => Ok(format!("refused: {err}")),
            Err(err) => Err(format!("refused for another reason: {err}")),
            Ok(_) => Err("ACCEPTED".to_owned()),
        },
    );
    row.record(
        log,
        "router started with the operator's certificate",
        "exit 2 naming the router certificate",
        router_with_wrong_role(router_binary, &ids).await,
    );
    row.results
}
