//! The DNS that `dns_sd` needs, hand-written (docs/adr/0021): one question (SRV, A or AAAA)
//! over UDP, again over TCP when the answer is truncated; the answer section's records read
//! (names with compression pointers). `query`/`parse_answer` are synchronous and I/O-free;
//! `lookup` does the I/O on tokio.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use gocost_config::DnsRecordType;

/// One record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Srv { port: u16, target: String },
    Ip(IpAddr),
}

fn qtype(t: DnsRecordType) -> u16 {
    match t {
        DnsRecordType::Srv => 33,
        DnsRecordType::A => 1,
        DnsRecordType::Aaaa => 28,
    }
}

/// A query message for `name` (recursion desired).
pub fn query(id: u16, name: &str, t: DnsRecordType) -> Result<Vec<u8>, String> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a valid DNS name"));
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype(t).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(m)
}

struct Reader<'a> {
    m: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self
            .m
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("answer cut short at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A name at the cursor (following compression pointers), with its trailing dot.
    fn name(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut at = self.at;
        let mut jumped = false;
        for _ in 0..128 {
            let len = *self
                .m
                .get(at)
                .ok_or_else(|| format!("name cut short at byte {at}"))?;
            match len {
                0 => {
                    if !jumped {
                        self.at = at + 1;
                    }
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Ok(out);
                }
                l if l & 0xC0 == 0xC0 => {
                    let lo = *self
                        .m
                        .get(at + 1)
                        .ok_or_else(|| format!("pointer cut short at byte {at}"))?;
                    if !jumped {
                        self.at = at + 2;
                    }
                    jumped = true;
                    at = (usize::from(l & 0x3F) << 8) | usize::from(lo);
                }
                l if l & 0xC0 == 0 => {
                    let l = usize::from(l);
                    let label = self
                        .m
                        .get(at + 1..at + 1 + l)
                        .ok_or_else(|| format!("label cut short at byte {at}"))?;
                    out.push_str(&String::from_utf8_lossy(label));
                    out.push('.');
                    at += 1 + l;
                }
                _ => return Err(format!("bad label type at byte {at}")),
            }
        }
        Err("name too long or looping".into())
    }
}

/// What an answer to query `id` says: its records of the asked type (CNAMEs and others
/// skipped, as Prometheus does), `Ok(None)` when it was truncated (ask again over TCP).
/// NXDOMAIN is no records.
pub fn parse_answer(m: &[u8], id: u16, t: DnsRecordType) -> Result<Option<Vec<Record>>, String> {
    let mut r = Reader { m, at: 0 };
    if r.u16()? != id {
        return Err("answer to another query (id mismatch)".into());
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("not an answer (QR bit unset)".into());
    }
    if flags & 0x0200 != 0 {
        return Ok(None);
    }
    match flags & 0x000F {
        0 => {}
        3 => return Ok(Some(Vec::new())),
        2 => return Err("server failure (SERVFAIL)".into()),
        5 => return Err("query refused (REFUSED)".into()),
        c => return Err(format!("DNS error code {c}")),
    }
    let qd = r.u16()?;
    let an = r.u16()?;
    r.take(4)?;
    for _ in 0..qd {
        r.name()?;
        r.take(4)?;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        r.name()?;
        let rtype = r.u16()?;
        r.take(6)?; // class, TTL
        let len = usize::from(r.u16()?);
        let start = r.at;
        let data = r.take(len)?;
        match (rtype, t) {
            (33, DnsRecordType::Srv) => {
                if len < 7 {
                    return Err(format!("SRV record too short at byte {start}"));
                }
                let port = u16::from_be_bytes([data[4], data[5]]);
                let mut tr = Reader { m, at: start + 6 };
                let target = tr.name()?;
                out.push(Record::Srv { port, target });
            }
            (1, DnsRecordType::A) if len == 4 => {
                out.push(Record::Ip(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                ))));
            }
            (28, DnsRecordType::Aaaa) if len == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                out.push(Record::Ip(IpAddr::V6(Ipv6Addr::from(b))));
            }
            _ => {}
        }
    }
    Ok(Some(out))
}

/// What `resolv.conf` says about resolving: its nameservers (port 53), search domains and
/// `ndots` — what Go's resolver, and so Prometheus' `dns_sd_configs`, use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
}

/// The `resolv.conf` gocost reads: `$GOCOST_RESOLV_CONF` (another file, for containers and
/// tests), else `/etc/resolv.conf`.
pub fn resolv_conf_path() -> std::path::PathBuf {
    std::env::var_os("GOCOST_RESOLV_CONF")
        .map_or_else(|| "/etc/resolv.conf".into(), std::path::PathBuf::from)
}

impl ResolvConf {
    /// Reads `resolv.conf` syntax: `nameserver`, `search` (or `domain`; the last wins),
    /// `options ndots:N` (default 1, at most 15 as glibc caps it); comments with `#`/`;`.
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => {
                    if let Some(ip) = w
                        .next()
                        .and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok())
                    {
                        c.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search" | "domain") => {
                    c.search = w
                        .take_while(|d| !d.starts_with(['#', ';']))
                        .map(|d| d.trim_matches('.').to_string())
                        .filter(|d| !d.is_empty())
                        .collect();
                }
                Some("options") => {
                    for o in w {
                        if let Some(n) = o.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                            c.ndots = usize::min(n, 15);
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The file at [`resolv_conf_path`]; with `resolver` set, its nameservers are that one
    /// alone (search domains and `ndots` still apply).
    pub fn system(resolver: Option<SocketAddr>) -> Result<ResolvConf, String> {
        let path = resolv_conf_path();
        let mut c = match std::fs::read_to_string(&path) {
            Ok(text) => ResolvConf::parse(&text),
            Err(_) if resolver.is_some() => ResolvConf::parse(""),
            Err(e) => return Err(format!("{}: {e} (set dns_sd.resolver)", path.display())),
        };
        if let Some(r) = resolver {
            c.servers = vec![r];
        }
        if c.servers.is_empty() {
            return Err(format!(
                "{} names no nameserver (set dns_sd.resolver)",
                path.display()
            ));
        }
        Ok(c)
    }

    /// The names to try for `name`, in order, as Go's resolver (and Prometheus, through
    /// miekg/dns' `NameList`) tries them: a name ending in `.` alone; else the name itself
    /// first when it has more than `ndots` dots' worth of labels, then each search domain
    /// appended, then the name itself last when it had fewer.
    pub fn names(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let labels = name.split('.').filter(|l| !l.is_empty()).count();
        let first = labels > self.ndots;
        let mut out = Vec::with_capacity(self.search.len() + 1);
        if first {
            out.push(format!("{name}."));
        }
        for d in &self.search {
            out.push(format!("{name}.{d}."));
        }
        if !first {
            out.push(format!("{name}."));
        }
        out
    }
}

/// `name`'s records of type `t` as Prometheus' DNS discovery finds them: each name of
/// [`ResolvConf::names`] in turn, each asked of the nameservers in order until one
/// answers (an error — no answer, SERVFAIL, REFUSED — moves to the next server); the first
/// name with records wins. No records anywhere is an empty list, unless some name got no
/// answer from any server: then the error.
pub async fn lookup_search(
    conf: &ResolvConf,
    name: &str,
    t: DnsRecordType,
    timeout: Duration,
) -> Result<Vec<Record>, String> {
    let mut failed = None;
    for candidate in conf.names(name) {
        let mut answered = false;
        for &server in &conf.servers {
            match lookup(server, &candidate, t, timeout).await {
                Ok(records) if !records.is_empty() => return Ok(records),
                Ok(_) => {
                    answered = true;
                    break;
                }
                Err(e) => failed = Some(e),
            }
        }
        if !answered && failed.is_none() {
            failed = Some(format!("{candidate}: no nameserver to ask"));
        }
    }
    match failed {
        Some(e) => Err(format!("could not resolve {name:?}: {e}")),
        None => Ok(Vec::new()),
    }
}

/// Asks `server` for `name`'s records of type `t`: UDP (two tries of `timeout` each), TCP
/// when the answer was truncated.
pub async fn lookup(
    server: SocketAddr,
    name: &str,
    t: DnsRecordType,
    timeout: Duration,
) -> Result<Vec<Record>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id()) as u16;
    let q = query(id, name, t)?;
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("UDP socket: {e}"))?;
    sock.connect(server)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let mut last = String::new();
    for _ in 0..2 {
        sock.send(&q).await.map_err(|e| format!("{server}: {e}"))?;
        // Answers to other queries (late ones) are skipped until the deadline.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => {
                    last = format!("{server}: no answer within {timeout:?}");
                    break;
                }
                Ok(Err(e)) => return Err(format!("{server}: {e}")),
                Ok(Ok(n)) => match parse_answer(&buf[..n], id, t) {
                    Err(e) if e.contains("id mismatch") => continue,
                    Err(e) => return Err(format!("{server}: {name}: {e}")),
                    Ok(Some(records)) => return Ok(records),
                    Ok(None) => {
                        let tcp = async {
                            let mut s = tokio::net::TcpStream::connect(server).await?;
                            let mut msg = (q.len() as u16).to_be_bytes().to_vec();
                            msg.extend_from_slice(&q);
                            s.write_all(&msg).await?;
                            let len = s.read_u16().await?;
                            let mut ans = vec![0u8; usize::from(len)];
                            s.read_exact(&mut ans).await?;
                            Ok::<_, std::io::Error>(ans)
                        };
                        let ans = tokio::time::timeout(timeout, tcp)
                            .await
                            .map_err(|_| format!("{server} (TCP): no answer within {timeout:?}"))?
                            .map_err(|e| format!("{server} (TCP): {e}"))?;
                        return parse_answer(&ans, id, t)
                            .map_err(|e| format!("{server}: {name}: {e}"))?
                            .ok_or_else(|| format!("{server}: {name}: truncated over TCP"));
                    }
                },
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_search_names_as_go_reads_them() {
        let c = ResolvConf::parse(
            "# k8s\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nsearch ns.svc.cluster.local svc.cluster.local. cluster.local\noptions ndots:5 timeout:2\n",
        );
        assert_eq!(
            c.servers,
            vec![
                "10.96.0.10:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(
            c.search,
            ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        );
        assert_eq!(c.ndots, 5);
        // Fewer than ndots: the search domains first, the name itself last.
        assert_eq!(
            c.names("_pprof._tcp.api"),
            [
                "_pprof._tcp.api.ns.svc.cluster.local.",
                "_pprof._tcp.api.svc.cluster.local.",
                "_pprof._tcp.api.cluster.local.",
                "_pprof._tcp.api."
            ]
        );
        // Fully qualified: alone.
        assert_eq!(c.names("api.example.org."), ["api.example.org."]);
        // More labels than ndots: the name itself first.
        let d = ResolvConf::parse("search a.test\n");
        assert_eq!(d.ndots, 1);
        assert_eq!(d.names("x.y"), ["x.y.", "x.y.a.test."]);
        assert_eq!(d.names("x"), ["x.a.test.", "x."]);
        // `domain` is a one-entry search list; the last of search/domain wins.
        assert_eq!(ResolvConf::parse("search a b\ndomain c\n").search, ["c"]);
    }

    #[test]
    fn an_srv_answer_with_compression_is_read() {
        let q = query(7, "_pprof._tcp.example.org", DnsRecordType::Srv).unwrap();
        let mut m = q.clone();
        m[2] = 0x81; // QR, RD
        m[3] = 0x80; // RA, NOERROR
        m[7] = 2; // two answers
        for (port, target) in [(6060u16, "a"), (6061, "b")] {
            m.extend_from_slice(&[0xC0, 12]); // the question's name
            m.extend_from_slice(&[0, 33, 0, 1, 0, 0, 0, 60]);
            let mut rdata = vec![0, 10, 0, 5];
            rdata.extend_from_slice(&port.to_be_bytes());
            rdata.push(1);
            rdata.extend_from_slice(target.as_bytes());
            rdata.extend_from_slice(&[0xC0, 12 + 12]); // "example.org" inside the question
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        let got = parse_answer(&m, 7, DnsRecordType::Srv).unwrap().unwrap();
        assert_eq!(
            got,
            [
                Record::Srv {
                    port: 6060,
                    target: "a.example.org.".into()
                },
                Record::Srv {
                    port: 6061,
                    target: "b.example.org.".into()
                },
            ]
        );
        assert!(parse_answer(&m, 8, DnsRecordType::Srv).is_err());
        // Cut anywhere: an error, never a panic.
        for n in 0..m.len() {
            let _ = parse_answer(&m[..n], 7, DnsRecordType::Srv);
        }
    }

    #[test]
    fn pointer_loops_and_bad_names_are_errors() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xC0, 12]); // points at itself
        assert!(parse_answer(&m, 1, DnsRecordType::A).is_err());
        assert!(query(1, "a..b", DnsRecordType::A).is_err());
    }
}
