//! The panic boundary: no panic unwinds into the server, which would abort
//! it. Every entry point the server calls runs its body through `contain`.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; a panic inside it is logged (by the hook) and becomes
/// `on_panic` instead of unwinding into the server, which would abort it.
pub fn contain<R>(on_panic: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Sends every panic message to the server log (through a `"%s"` format),
/// where an operator will look for it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = format!("charon: internal error (contained, server unaffected): {info}");
        crate::server::log(std::ptr::null_mut(), c"warning", &message);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_panics() {
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(contain(7, || panic!("boom")), 7);
        let _ = std::panic::take_hook();
        assert_eq!(contain(7, || 1), 1);
    }
}
