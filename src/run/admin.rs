//! The admin API (`/galene-api/`, [`crate::http::admin`]) in the runtime.
//!
//! Requests are answered on one thread of their own, `sfubox-admin`, started with the server:
//! checking a password hashes it (bcrypt at cost 12 takes a quarter of a second on a PC,
//! more on a Raspberry Pi), which must stay off the executor, and one thread makes each
//! request's read-check-write of a file atomic with respect to the others (token writes on
//! the executor take the same [`FileCache`] write lock). It is not the file worker: a burst
//! of password guesses must not delay the file refreshes every join waits for.
//!
//! Back on the executor, a request that changed group files touches those groups in the
//! engine, inside a refresh of the files taken after the write, so that their members get
//! `joined change` at once (a file edited by hand is seen the same way, at the group's next
//! use); `.stats` gets its body from the engine; and a refused login is answered after
//! [`NOT_AUTHORISED_DELAY`], without holding anything up meanwhile.

use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

use smol::Timer;

use super::admin_files::DiskAdminStore;
use super::{Engine, Shared};
use crate::config::{FileCache, FileNeed, Freshness};
use crate::core::NOT_AUTHORISED_DELAY;
use crate::http::admin::{
    AdminFile, AdminReply, AdminRequest, Answer, MAX_BODY, PasswordChecks, handle, is_api_path,
};
use crate::http::path::{canonical, parse_target};
use crate::http::route::not_found;
use crate::http::{Request, Response};

/// One request for the admin thread and where its answer goes.
struct AdminJob {
    request: Request,
    body: Vec<u8>,
    peer: SocketAddr,
    reply: smol::channel::Sender<(AdminReply, Option<Freshness>)>,
}

/// The admin thread.
pub(super) struct AdminWorker {
    jobs: std::sync::mpsc::Sender<AdminJob>,
}

impl AdminWorker {
    /// Starts the thread over the directories of `cache`. It ends when the server's state
    /// is dropped.
    pub(super) fn start(cache: FileCache) -> io::Result<AdminWorker> {
        let (jobs, requests) = std::sync::mpsc::channel::<AdminJob>();
        std::thread::Builder::new()
            .name("sfubox-admin".into())
            .spawn(move || {
                let mut store = DiskAdminStore::new(cache.clone());
                let mut passwords = PasswordChecks::new();
                for job in requests {
                    store.start_request();
                    // A bug must not take the API down for good: the request gets a 500, the
                    // thread goes on (the store keeps nothing across requests).
                    let answered = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        handle(
                            AdminRequest {
                                request: &job.request,
                                body: &job.body,
                                peer: Some(job.peer),
                                now: SystemTime::now(),
                            },
                            &mut store,
                            &mut passwords,
                        )
                    }));
                    let reply = answered.unwrap_or_else(|payload| {
                        log::error!(
                            "panic while answering {} {}: {}",
                            job.request.method,
                            job.request.target,
                            super::limits::panic_message(payload.as_ref())
                        );
                        AdminReply {
                            answer: Answer::Response(Response::text(500, "Internal server error")),
                            changed: Vec::new(),
                            failed_login: false,
                        }
                    });
                    let freshness = (!reply.changed.is_empty()).then(|| {
                        // Touching a group also reads config.json (its rules) and the
                        // tokens: refresh them with the files written.
                        let mut needs: Vec<FileNeed> =
                            reply.changed.iter().map(AdminFile::need).collect();
                        needs.extend([FileNeed::Config, FileNeed::Tokens]);
                        cache.refresh(&needs)
                    });
                    // The asker may have gone (its connection closed): nothing to do then.
                    let _ = job.reply.send_blocking((reply, freshness));
                }
            })?;
        Ok(AdminWorker { jobs })
    }

    /// Has the thread answer a request; `None` if it is gone.
    async fn call(
        &self,
        request: Request,
        body: Vec<u8>,
        peer: SocketAddr,
    ) -> Option<(AdminReply, Option<Freshness>)> {
        let (reply, answer) = smol::channel::bounded(1);
        let job = AdminJob {
            request,
            body,
            peer,
            reply,
        };
        self.jobs.send(job).ok()?;
        answer.recv().await.ok()
    }
}

/// Whether the admin API answers `request`: a canonical path under `/galene-api/` (others
/// are redirected by the router first).
pub(super) fn wants(request: &Request) -> bool {
    parse_target(&request.target)
        .is_some_and(|t| is_api_path(&t.path) && canonical(&t.path) == t.path)
}

/// The largest body an API request may have.
pub(super) const BODY_LIMIT: usize = MAX_BODY;

/// Answers one API request (see the module docs).
pub(super) async fn serve<E: Engine>(
    shared: &Shared<E>,
    request: Request,
    body: Vec<u8>,
    peer: SocketAddr,
) -> Response {
    let Some(worker) = &shared.admin else {
        return Response::text(503, "the admin API is not available");
    };
    let Some((reply, freshness)) = worker.call(request, body, peer).await else {
        return Response::text(503, "the admin API is not available");
    };
    if reply.failed_login {
        Timer::after(NOT_AUTHORISED_DELAY).await;
    }
    let groups: Vec<&str> = reply
        .changed
        .iter()
        .filter_map(|file| match file {
            AdminFile::Group(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !groups.is_empty() {
        let _files = shared.files_for_input(freshness);
        shared.with_engine(|engine| {
            let now = Instant::now();
            for group in &groups {
                engine.group_status(now, group);
            }
        });
    }
    match reply.answer {
        Answer::Response(response) => response,
        Answer::NotFoundPage => not_found(shared.files.as_ref()),
        Answer::Stats(mut response) => {
            response.body = shared.engine.borrow_mut().stats_json().into_bytes().into();
            response
        }
    }
}
