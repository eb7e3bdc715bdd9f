//! Threaded NAPI on the director's interfaces (`[director] threaded_napi`).
//!
//! Linux polls a NIC's receive queues (NAPI) in softirq context on the CPU that took the
//! interrupt; with `/sys/class/net/<if>/threaded` = 1 each queue is polled by its own kernel
//! thread instead, which the scheduler may run on any CPU. The XDP director runs inside that
//! poll, so threaded NAPI moves the forwarding work off a CPU that is busy with other work
//! (in the namespace lab: the client's CPU, which raised the softirq by sending).
//!
//! Contract: [`apply`] writes the wanted value to every interface's `threaded` file and
//! returns a [`NapiGuard`] remembering each interface's previous value, which
//! [`NapiGuard::restore`] (or dropping the guard) writes back. An interface whose file
//! cannot be read or written (no NAPI context: a veth without native XDP; an older kernel),
//! or whose `/sys/class/net/<if>/ifindex` is not the expected index (a `/sys` mounted for
//! another network namespace), is left alone with a warning naming it and the reason: the
//! director forwards the same either way, only where the work runs changes.

use std::path::PathBuf;

/// Previous `threaded` values, written back on [`NapiGuard::restore`] or drop.
#[derive(Debug, Default)]
pub(crate) struct NapiGuard {
    restore: Vec<(String, String)>,
}

/// Parses a `threaded` file's content: a mode number (`0` off, `1` threaded; newer kernels
/// have more), returned trimmed so it can be written back as it was.
pub(crate) fn parse_threaded(text: &str) -> Option<&str> {
    let t = text.trim();
    (!t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

fn sys(name: &str, file: &str) -> PathBuf {
    PathBuf::from(format!("/sys/class/net/{name}/{file}"))
}

fn read_threaded(name: &str) -> Result<String, String> {
    let path = sys(name, "threaded");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_threaded(&text)
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: unexpected {text:?}", path.display()))
}

fn write_threaded(name: &str, value: &str) -> Result<(), String> {
    let path = sys(name, "threaded");
    std::fs::write(&path, value).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EIO) => {
                " (the interface has no NAPI context: a veth needs native XDP for one)"
            }
            _ => "",
        };
        format!("{}: {e}{hint}", path.display())
    })
}

fn same_interface(name: &str, ifindex: u32) -> Result<(), String> {
    let path = sys(name, "ifindex");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match text.trim().parse::<u32>() {
        Ok(i) if i == ifindex => Ok(()),
        _ => Err(format!(
            "{} says {:?}, the interface is {ifindex}: /sys belongs to another network namespace",
            path.display(),
            text.trim()
        )),
    }
}

/// Sets threaded NAPI to `on` for each `(name, ifindex)` (see the module doc).
pub(crate) fn apply(interfaces: &[(&str, u32)], on: bool) -> NapiGuard {
    let mut guard = NapiGuard::default();
    let want = if on { "1" } else { "0" };
    for &(name, ifindex) in interfaces {
        let result = same_interface(name, ifindex).and_then(|()| {
            let before = read_threaded(name)?;
            if before != want {
                write_threaded(name, want)?;
            }
            Ok(before)
        });
        match result {
            Ok(before) => {
                tracing::info!(interface = name, threaded = on, "NAPI mode set");
                if before != want {
                    guard.restore.push((name.to_owned(), before));
                }
            }
            Err(reason) => {
                tracing::warn!(interface = name, %reason, "threaded_napi not applied")
            }
        }
    }
    guard
}

impl NapiGuard {
    /// Writes the previous values back (once; later calls do nothing).
    pub(crate) fn restore(&mut self) {
        for (name, before) in self.restore.drain(..) {
            if let Err(reason) = write_threaded(&name, &before) {
                tracing::warn!(interface = %name, %reason, "NAPI mode not restored");
            }
        }
    }
}

impl Drop for NapiGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_file_content() {
        assert_eq!(parse_threaded("1\n"), Some("1"));
        assert_eq!(parse_threaded("0"), Some("0"));
        assert_eq!(parse_threaded("2\n"), Some("2"));
        assert_eq!(parse_threaded(""), None);
        assert_eq!(parse_threaded("on"), None);
    }

    #[test]
    fn an_interface_that_does_not_exist_is_left_alone() {
        let mut g = apply(&[("strait-none0", 4_000_000)], true);
        assert!(g.restore.is_empty());
        g.restore();
    }
}
