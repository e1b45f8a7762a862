//! The one bounded wait loop every suite uses.

use std::{future::Future, time::Duration};

use crate::Error;

/// Calls `check` until it returns `Ok`, `interval` apart, at most `limit / interval + 1`
/// times and never longer than `limit` in total. `Err(why)` means "not yet"; the last `why`
/// ends up in the [`Error::Timeout`].
pub async fn poll_until<T, F, Fut>(
    what: &str,
    limit: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let attempts = limit.as_millis() / interval.as_millis().max(1) + 1;
    let mut last = String::from("never checked");
    let looping = async {
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(interval).await;
            }
            match check().await {
                Ok(value) => return Some(value),
                Err(why) => last = why,
            }
        }
        None
    };
    match tokio::time::timeout(limit, looping).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) | Err(_) => Err(Error::Timeout {
            what: what.to_owned(),
            waited: limit,
            last,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_as_soon_as_the_check_passes() {
        let calls = &AtomicU32::new(0);
        let got = poll_until(
            "third call",
            Duration::from_secs(5),
            Duration::from_millis(1),
            move || async move {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err("not yet".to_owned()),
                    n => Ok(n),
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 2);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_reason_and_a_bounded_count() {
        let calls = &AtomicU32::new(0);
        let err = poll_until::<(), _, _>(
            "never",
            Duration::from_millis(50),
            Duration::from_millis(10),
            move || async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                Err(format!("attempt {n}"))
            },
        )
        .await
        .unwrap_err();
        let calls = calls.load(Ordering::SeqCst);
        assert!((1..=6).contains(&calls), "{calls} calls");
        let text = err.to_string();
        assert!(
            text.starts_with("gave up waiting for never after 50ms: attempt"),
            "{text}"
        );
    }
}
