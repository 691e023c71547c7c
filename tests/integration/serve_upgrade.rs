//! Upgrade (WebSocket-style) requests are tunnelled to the primary only and counted as
//! skipped with reason `upgrade`; CONNECT is refused.

use crate::support;

use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A primary that switches protocols and then echoes every byte back.
async fn echo_upgrade_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
                    .await;
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_is_tunnelled_to_the_primary_and_counted_as_skipped() {
    let primary = echo_upgrade_server().await;
    let secondary = fixed(200, "never").await;
    let (config, dir) = config(&format!("http://{primary}"), &secondary.url());
    let proxy = start(config, dir).await;

    let tunnelled = tokio::time::timeout(Duration::from_secs(30), async {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        stream.write_all(b"ping over the tunnel").await.unwrap();
        let mut echoed = [0u8; 20];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping over the tunnel");
    })
    .await;
    assert!(
        tunnelled.is_ok(),
        "the tunnel did not carry bytes both ways"
    );

    // CONNECT (authority form; the address is never dialled) is refused, not tunnelled.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 405");
    drop(stream);

    let db = proxy.stop().await;
    assert!(secondary.received().is_empty());
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--format", "json", "--db"])
        .arg(&db.path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["summary"]["skipped_by_reason"]["upgrade"], 2,
        "{:#}",
        report["summary"]
    );
    assert_eq!(report["summary"]["matched"], 0);
}
