//! Batches in the library: answered in order, each call failing alone, the
//! number of calls and the output of all of them bounded.

use warden_testkit as common;

use warden::{BatchLimits, Error, ProcessRequest};

fn upper(text: &str) -> (String, ProcessRequest) {
    (
        "text-transform".to_string(),
        ProcessRequest::new(text).option("op", "upper"),
    )
}

#[test]
fn a_batch_answers_every_call_in_order_within_its_limits() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");

    let calls = vec![
        upper("one"),
        ("missing".to_string(), ProcessRequest::new("x")),
        upper("three"),
    ];
    let answers = host
        .process_batch_blocking(calls, BatchLimits::default())
        .expect("batch");
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0].as_ref().expect("first").output, b"ONE");
    assert!(
        matches!(answers[1], Err(Error::NotFound { .. })),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[2].as_ref().expect("third").output, b"THREE");

    // Too many calls: refused whole, nothing runs.
    let before = plugin.stats().calls;
    let limits = BatchLimits {
        max_calls: 2,
        ..BatchLimits::default()
    };
    let refused = host
        .process_batch_blocking(vec![upper("a"), upper("b"), upper("c")], limits)
        .expect_err("three calls past a limit of two");
    assert!(
        matches!(
            refused,
            Error::BatchLimit {
                what: "calls",
                size: 3,
                max: 2
            }
        ),
        "{refused}"
    );
    assert_eq!(
        plugin.stats().calls,
        before,
        "no call of a refused batch ran"
    );

    // Ten output bytes for the whole batch: the first 8-byte answer fits;
    // the second does not, is dropped, and spends the allowance, so the
    // calls after it (whose answers would have fitted) are not run.
    let limits = BatchLimits {
        concurrency: 1,
        max_output_bytes: 10,
        ..BatchLimits::default()
    };
    let answers = host
        .process_batch_blocking(
            vec![
                upper("eight by"),
                upper("eight by"),
                upper("ab"),
                upper("x"),
            ],
            limits,
        )
        .expect("batch");
    assert_eq!(answers[0].as_ref().expect("first fits").output, b"EIGHT BY");
    for answer in &answers[1..] {
        assert!(
            matches!(
                answer,
                Err(Error::BatchLimit {
                    what: "output bytes",
                    ..
                })
            ),
            "{answer:?}"
        );
    }
    assert_eq!(
        plugin.stats().calls,
        before + 2,
        "the calls after the allowance was spent did not run"
    );
}

#[tokio::test]
async fn a_caller_measures_the_answers_in_its_own_form() {
    let host = common::host();
    host.load(common::plugin_dir("text-transform"))
        .await
        .expect("load");
    // Answers as quoted text, measured quoted: "ABCD" is 6 bytes, so of a
    // 10-byte allowance the first fits and the second does not, although
    // its raw output (4 bytes) would have.
    let limits = BatchLimits {
        concurrency: 1,
        max_output_bytes: 10,
        ..BatchLimits::default()
    };
    let quoted = |position: usize, result: warden::Result<warden::ProcessResponse>, _| {
        let text = result.map(|r| format!("\"{}\"", String::from_utf8_lossy(&r.output)));
        (position, text)
    };
    let size =
        |answer: &(usize, warden::Result<String>)| answer.1.as_ref().map_or(0, |t| t.len() as u64);
    let answers = host
        .process_batch_with(vec![upper("abcd"), upper("efgh")], limits, quoted, size)
        .await
        .expect("batch");
    assert_eq!(answers[0].0, 0);
    assert_eq!(answers[0].1.as_deref().expect("first fits"), "\"ABCD\"");
    assert_eq!(answers[1].0, 1, "answers carry their call's position");
    assert!(
        matches!(
            answers[1].1,
            Err(Error::BatchLimit {
                what: "output bytes",
                ..
            })
        ),
        "{:?}",
        answers[1].1
    );
}
