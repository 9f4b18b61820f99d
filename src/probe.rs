//! `randomize healthcheck`: a minimal HTTP/1.1 GET of `/healthz` over loopback, so the
//! container image needs no curl or wget for its HEALTHCHECK.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

pub(crate) fn healthz(bind: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let target = loopback_for(bind);
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("healthcheck: cannot connect to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .context("healthcheck: cannot send")?;
    // The status line is all we need; the server closes after the answer.
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream
            .read(&mut head[read..])
            .context("healthcheck: no answer")?
        {
            0 => break,
            n => read += n,
        }
    }
    let status = std::str::from_utf8(&head[..read]).unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        bail!(
            "healthcheck: /healthz answered {:?}",
            status.lines().next().unwrap_or("")
        );
    }
    println!("healthy");
    Ok(())
}

fn loopback_for(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bind.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bind.port()).into(),
        _ => bind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            loopback_for("0.0.0.0:5000".parse().unwrap()),
            "127.0.0.1:5000".parse().unwrap()
        );
        assert_eq!(
            loopback_for("[::]:80".parse().unwrap()),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            loopback_for("10.0.0.7:5000".parse().unwrap()),
            "10.0.0.7:5000".parse().unwrap()
        );
    }
}
