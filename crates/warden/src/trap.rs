//! Why a call trapped, said cause first: the trap's kind, the limit that
//! was hit and what to change, then the guest's last stderr and the wasm
//! backtrace. Traps wasmtime raises for host-side limits (hostcall fuel,
//! a full resource table, an oversized random request) and the host's own
//! [`HostTrap`]s are named like the guest's own traps.

use wasmtime::component::ResourceTableError;

use crate::audit::AuditKind;
use crate::budget::HostTrap;
use crate::error::{Error, TrapKind};
use crate::limits::{Limits, MAX_RANDOM_BYTES};
use crate::scope::CallScope;

/// A trap's kind and its cause in one line, without the backtrace.
pub(crate) struct Cause {
    pub(crate) kind: TrapKind,
    pub(crate) line: String,
}

/// Names the cause of a trap. A failed allocation shows up as a guest abort
/// (`unreachable`); the limiter's record tells it apart from a real panic.
pub(crate) fn classify(err: &wasmtime::Error, memory_denied: bool, limits: &Limits) -> Cause {
    use wasmtime::Trap;
    let cause = |kind, line: String| Cause { kind, line };
    if let Some(trap) = err.downcast_ref::<HostTrap>() {
        return cause(trap.kind, trap.message.clone());
    }
    let root = err.root_cause().to_string();
    let handles_full = matches!(
        err.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    ) || root.ends_with("store handle limit exceeded");
    if handles_full {
        return cause(
            TrapKind::HostResourceLimit,
            format!(
                "the instance holds the most handles it may, {} (`limits.max-resources`); \
                 drop streams, pollables and requests it no longer needs, or raise the limit",
                limits.max_resources
            ),
        );
    }
    if let Some(
        wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
        | wasmtime_wasi_http::FieldMapError::TooManyFields,
    ) = err.downcast_ref::<wasmtime_wasi_http::FieldMapError>()
    {
        return cause(
            TrapKind::HostResourceLimit,
            format!(
                "a header map grew past what the host keeps for one ({} bytes); send fewer \
                 or smaller headers",
                crate::capabilities::http::FIELD_BYTES
            ),
        );
    }
    if root.contains("fuel allocated for hostcalls") {
        return cause(
            TrapKind::HostResourceLimit,
            format!(
                "one host call copied more than {} bytes out of the guest (the transfer share \
                 of `limits.host-memory-mb`); pass less data per call or raise the limit",
                limits.transfer_bytes()
            ),
        );
    }
    if root.starts_with("requested len") {
        return cause(
            TrapKind::HostResourceLimit,
            format!(
                "the guest asked for more random bytes in one call than the host gives \
                 ({MAX_RANDOM_BYTES}); ask in smaller pieces"
            ),
        );
    }
    let kind = match err.downcast_ref::<Trap>() {
        // Instantiation refused by the limiter: not a trap, but out of memory.
        None if memory_denied => TrapKind::OutOfMemory,
        Some(Trap::Interrupt) => TrapKind::Timeout,
        Some(Trap::OutOfFuel) => TrapKind::OutOfFuel,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::UnreachableCodeReached) if memory_denied => TrapKind::OutOfMemory,
        Some(Trap::UnreachableCodeReached) => TrapKind::GuestPanic,
        _ => TrapKind::Other,
    };
    let line = match kind {
        TrapKind::OutOfMemory => format!(
            "the instance needed more than its {} MiB memory limit (raise `limits.memory-mb`)",
            limits.memory_bytes >> 20
        ),
        TrapKind::OutOfFuel => format!(
            "the call used up its fuel, {} (raise `limits.fuel`)",
            limits.fuel.unwrap_or(u64::MAX)
        ),
        TrapKind::StackOverflow => {
            "the guest overflowed its wasm stack (deep or unbounded recursion)".to_string()
        }
        _ => root,
    };
    cause(kind, line)
}

/// The error for a call that trapped: its cause first, then the guest's last
/// stderr and the wasm backtrace; the limit hit is audited.
pub(crate) fn trap_error(
    plugin: &str,
    limits: &Limits,
    memory_denied: bool,
    scope: &CallScope,
    err: &wasmtime::Error,
) -> Error {
    let Cause { kind, line } = classify(err, memory_denied, limits);
    let mut message = line.clone();
    let stderr = scope.last_stderr();
    if !stderr.is_empty() {
        message.push('\n');
        message.push_str(&stderr);
    }
    if let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
        message.push('\n');
        message.push_str(&backtrace.to_string());
    }
    let resource = match kind {
        TrapKind::Timeout => format!("deadline {:?}", limits.timeout),
        TrapKind::OutOfMemory => format!("memory limit {} MiB", limits.memory_bytes >> 20),
        TrapKind::OutOfFuel => format!("fuel {}", limits.fuel.unwrap_or(u64::MAX)),
        TrapKind::StackOverflow => "wasm stack".to_string(),
        _ => format!("{kind}: {line}"),
    };
    scope.audit(
        AuditKind::of_trap(kind),
        resource,
        "call failed; instance discarded",
    );
    Error::Trap {
        plugin: plugin.to_string(),
        kind,
        message,
    }
}

/// The error for a call the host abandoned at its last-resort deadline (the
/// guest was waiting in a host function, where epochs cannot interrupt it);
/// audited.
pub(crate) fn timeout_trap(plugin: &str, limits: &Limits, scope: &CallScope) -> Error {
    scope.audit(
        AuditKind::Timeout,
        format!("deadline {:?}", limits.timeout),
        "call abandoned; instance discarded",
    );
    Error::Trap {
        plugin: plugin.to_string(),
        kind: TrapKind::Timeout,
        message: format!(
            "the call did not finish within {:?} (raise `limits.timeout-ms` if it needs longer)",
            limits.timeout
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_limits_lead_with_their_cause() {
        let limits = Limits::default();
        let full = wasmtime::Error::from(ResourceTableError::Full);
        let c = classify(&full, false, &limits);
        assert_eq!(c.kind, TrapKind::HostResourceLimit);
        assert!(c.line.contains("`limits.max-resources`"), "{}", c.line);
        let own = wasmtime::Error::from(HostTrap::not_granted("no `http` permission".into()));
        let c = classify(&own, false, &limits);
        assert_eq!(
            (c.kind, c.line.as_str()),
            (TrapKind::NotGranted, "no `http` permission")
        );
        let random = wasmtime::format_err!("requested len 99999999 exceeds limit 1048576");
        assert_eq!(
            classify(&random, false, &limits).kind,
            TrapKind::HostResourceLimit
        );
        let other = wasmtime::format_err!("something else");
        let c = classify(&other, false, &limits);
        assert_eq!(
            (c.kind, c.line.as_str()),
            (TrapKind::Other, "something else")
        );
    }
}
