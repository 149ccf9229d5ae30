//! How often and after which pause the service runs again what met a concurrent write.

use std::time::Duration;

/// Runs in all, the first included, before a concurrent write is answered ABORTED.
pub const ATTEMPTS: u32 = 5;

/// Waits before run `attempt + 1`: 5, 10, 20, 40 ms, each stretched by a random share of up to
/// half again, so that two requests that met each other do not meet again in step.
pub async fn pause(attempt: u32) {
    tokio::time::sleep(pause_before(attempt)).await;
}

fn pause_before(attempt: u32) -> Duration {
    let base = Duration::from_millis(5) * 2u32.saturating_pow(attempt.saturating_sub(1).min(6));
    let mut random = [0u8; 2];
    // Without randomness the pause is merely not stretched.
    let share = getrandom::fill(&mut random)
        .map(|()| u32::from(u16::from_le_bytes(random)))
        .unwrap_or(0);
    base + base / 2 * share / u32::from(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_and_stretch_by_at_most_half() {
        for attempt in 1..ATTEMPTS {
            let base = Duration::from_millis(5) * 2u32.pow(attempt - 1);
            let pause = pause_before(attempt);
            assert!(
                pause >= base && pause <= base * 3 / 2,
                "{attempt}: {pause:?}"
            );
        }
    }
}
