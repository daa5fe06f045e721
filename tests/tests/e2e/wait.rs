//! Every wait of the tests, bounded in time: [`poll`] (`None` when it never came),
//! [`within`] (fails naming what never came), [`until`] (fails with the last state seen), and
//! the usual bounds [`eventually`] (10 s) and [`eventually_async`] (20 s).

/// What `f` gives once it gives something, polling every 50 ms for at most `limit`; `None`
/// if it never does. Every wait of the tests is this, bounded.
pub async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    limit: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What `f` gives once it is `Ok` within `limit`; each `Err` says how things stand, and the
/// test fails with the last one if it never is.
pub async fn until<T, F: std::future::Future<Output = Result<T, String>>>(
    limit: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(why) if std::time::Instant::now() >= deadline => {
                panic!("not within {limit:?}: {why}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// What `f` gives once it gives something within `limit`; the test fails naming `what` if
/// it never does.
pub async fn within<T, F: std::future::Future<Output = Option<T>>>(
    limit: std::time::Duration,
    what: &str,
    f: impl FnMut() -> F,
) -> T {
    match poll(limit, f).await {
        Some(v) => v,
        None => panic!("never within {limit:?}: {what}"),
    }
}

/// [`within`] 10 s, for a check that needs no waiting itself (the nester's jobs run every
/// 100 ms to 2 s).
pub async fn eventually<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    within(std::time::Duration::from_secs(10), what, || {
        std::future::ready(f())
    })
    .await
}

/// [`within`] 20 s, for an asynchronous check.
pub async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl Fn() -> F,
) -> T {
    within(std::time::Duration::from_secs(20), what, f).await
}
