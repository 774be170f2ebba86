//! The accept loop of `npr serve`, driven here instead of by `axum::serve`, because
//! that one has no header timeout, no connection limit and waits for every connection
//! at shutdown — a client that sends one byte a second could stall the server forever
//! and keep it alive after Ctrl-C.
//!
//! - at most `max_connections` connections: the loop stops accepting while they are all
//!   open (the kernel's backlog holds the next ones);
//! - hyper's header-read timeout: it runs from the moment a connection waits for a
//!   request's header, so it ends a half-sent header and an idle keep-alive connection
//!   alike (the body's deadline is the handler's, `api::predict`);
//! - on stop: no new connections, every connection is asked to finish its request in
//!   flight and close, and after `shutdown_grace` whatever is left is dropped.
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::options::NetLimits;

/// Serves `app` on `listener` until `stop` resolves, then winds down within the grace.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    net: NetLimits,
    stop: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(net.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(net.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Some((stream, slot)) = accepted else {
            continue;
        };
        let (builder, app, closing) = (builder.clone(), app.clone(), closing.clone());
        connections.spawn(connection(stream, slot, builder, app, closing));
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(net.shutdown_grace, drained)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// One connection slot, then one accepted socket (`None` after a failed accept, e.g.
/// out of file descriptors: retried after a short pause instead of spinning).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, slot))
        }
        Err(_) => {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}

/// Serves one connection until it closes, or asks it to close once `closing` is set.
async fn connection(
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    builder: Arc<http1::Builder>,
    app: Router,
    mut closing: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(app);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|&c| c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
