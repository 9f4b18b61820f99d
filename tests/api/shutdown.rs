//! SIGTERM with requests in flight (SPEC §9): they all complete, the writer is
//! flushed, and the process exits 0.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestDb};
use crate::process::Process;

/// Reads one HTTP/1.1 response (headers + Content-Length body) off `stream`.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed mid-response"
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_zero() {
    let db = TestDb::new(Backend::Sqlite);
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::serve(&db.url, &dir);
    let port = server.port().await;

    // Three connections, each with a POST whose head the server has parsed — proven
    // by its `100 Continue` — and whose body has not been sent yet. Without that
    // proof the race is real: a request still unread in the socket buffer when the
    // drain starts is indistinguishable from an idle keep-alive connection, which
    // actix closes.
    let body = br#"{"word":"inflight"}"#;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let head = format!(
            "POST /api/randomizes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut stream).await.0, 100);
        streams.push(stream);
    }

    server.signal("TERM");
    server.wait_for("shutting down").await;

    for stream in &mut streams {
        stream.write_all(body).await.unwrap();
        let (status, response) = read_response(stream).await;
        assert_eq!(status, 201, "{response}");
    }
    drop(streams);

    let (exit, _) = server.exit().await;
    assert_eq!(exit.code(), Some(0));
    assert_eq!(db.count_randomizes(), 3);
    assert_eq!(
        db.histories()
            .iter()
            .filter(|h| h.method == "POST" && h.status == 201)
            .count(),
        3
    );
}
