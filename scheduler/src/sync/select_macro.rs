//! The [`select!`](crate::select!) macro, shaped like crossbeam-channel's.

/// Waits for the first of several channel operations, like
/// `crossbeam_channel::select!`, built on [`Select`](crate::sync::Select).
///
/// Arms are `recv(receiver) -> message => body`, where `message` is a
/// `Result<T, RecvError>`, and `send(sender, value) -> result => body`,
/// where `result` is a `Result<(), SendError<T>>`. An optional last arm
/// `default => body` makes the select non-blocking, and
/// `default(timeout) => body` gives up after `timeout`. Bodies are blocks or
/// expressions followed by a comma.
///
/// ```
/// use std::time::Duration;
/// use runtime::{select, sync::channel};
///
/// runtime::run(|| {
///     let (numbers_tx, numbers) = channel::unbounded::<u32>();
///     let (words_tx, words) = channel::unbounded::<&str>();
///     let (n, w) = (numbers_tx.clone(), words_tx.clone());
///     runtime::spawn(move || {
///         n.send(1).unwrap();
///         w.send("two").unwrap();
///     });
///     let mut got = Vec::new();
///     while got.len() < 2 {
///         select! {
///             recv(numbers) -> n => got.push(n.unwrap().to_string()),
///             recv(words) -> word => got.push(word.unwrap().to_string()),
///             default(Duration::from_secs(1)) => panic!("timed out"),
///         }
///     }
///     got.sort();
///     assert_eq!(got, ["1", "two"]);
///     // Nothing more is coming once every sender is gone.
///     drop((numbers_tx, words_tx));
///     select! {
///         recv(numbers) -> n => assert!(n.is_err()),
///         default => unreachable!("a disconnected channel is ready"),
///     }
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select!(@parse () () $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    // Parsing: arms go into the first group, a default arm into the second.
    (@parse ($($arms:tt)*) ($($default:tt)*) recv($r:expr) -> $p:pat => $body:block $(,)? $($rest:tt)*) => {
        $crate::__select!(@parse ($($arms)* (recv ($r) ($p) ($body))) ($($default)*) $($rest)*)
    };
    (@parse ($($arms:tt)*) ($($default:tt)*) recv($r:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($($arms)* (recv ($r) ($p) ($body))) ($($default)*) $($($rest)*)?)
    };
    (@parse ($($arms:tt)*) ($($default:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:block $(,)? $($rest:tt)*) => {
        $crate::__select!(@parse ($($arms)* (send ($s) ($v) ($p) ($body))) ($($default)*) $($rest)*)
    };
    (@parse ($($arms:tt)*) ($($default:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($($arms)* (send ($s) ($v) ($p) ($body))) ($($default)*) $($($rest)*)?)
    };
    (@parse ($($arms:tt)*) () default => $body:block $(,)?) => {
        $crate::__select!(@parse ($($arms)*) (now ($body)))
    };
    (@parse ($($arms:tt)*) () default => $body:expr $(,)?) => {
        $crate::__select!(@parse ($($arms)*) (now ($body)))
    };
    (@parse ($($arms:tt)*) () default($t:expr) => $body:block $(,)?) => {
        $crate::__select!(@parse ($($arms)*) (timeout ($t) ($body)))
    };
    (@parse ($($arms:tt)*) () default($t:expr) => $body:expr $(,)?) => {
        $crate::__select!(@parse ($($arms)*) (timeout ($t) ($body)))
    };
    (@parse ($($arms:tt)*) ($($default:tt)*)) => {{
        let mut __select = $crate::sync::Select::new();
        $crate::__select!(@add __select () ($($default)*) $($arms)*)
    }};

    // Adding the arms, one nesting level each, so every arm's bindings are
    // its own (macro hygiene keeps same-named bindings of levels apart).
    (@add $sel:ident ($($done:tt)*) $default:tt (recv ($r:expr) ($p:pat) ($body:expr)) $($arms:tt)*) => {{
        let __receiver = &$r;
        let __index = $sel.recv(__receiver);
        $crate::__select!(@add $sel ($($done)* (recv __receiver __index ($p) ($body))) $default $($arms)*)
    }};
    (@add $sel:ident ($($done:tt)*) $default:tt (send ($s:expr) ($v:expr) ($p:pat) ($body:expr)) $($arms:tt)*) => {{
        let __sender = &$s;
        let __index = $sel.send(__sender);
        $crate::__select!(@add $sel ($($done)* (send __sender __index ($v) ($p) ($body))) $default $($arms)*)
    }};
    (@add $sel:ident $done:tt ()) => {{
        let __operation = $sel.select();
        $crate::__select!(@dispatch __operation $done)
    }};
    (@add $sel:ident $done:tt (now ($body:expr))) => {{
        match $sel.try_select() {
            ::std::result::Result::Ok(__operation) => $crate::__select!(@dispatch __operation $done),
            ::std::result::Result::Err(_) => $body,
        }
    }};
    (@add $sel:ident $done:tt (timeout ($t:expr) ($body:expr))) => {{
        match $sel.select_timeout($t) {
            ::std::result::Result::Ok(__operation) => $crate::__select!(@dispatch __operation $done),
            ::std::result::Result::Err(_) => $body,
        }
    }};

    // Running the body of the selected arm.
    (@dispatch $op:ident ((recv $r:ident $i:ident ($p:pat) ($body:expr)) $($rest:tt)*)) => {
        if $op.index() == $i {
            let $p = $op.recv($r);
            $body
        } else {
            $crate::__select!(@dispatch $op ($($rest)*))
        }
    };
    (@dispatch $op:ident ((send $s:ident $i:ident ($v:expr) ($p:pat) ($body:expr)) $($rest:tt)*)) => {
        if $op.index() == $i {
            let $p = $op.send($s, $v);
            $body
        } else {
            $crate::__select!(@dispatch $op ($($rest)*))
        }
    };
    (@dispatch $op:ident ()) => {
        ::std::unreachable!("the selected operation is one of the arms")
    };
}
