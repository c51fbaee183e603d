//! Any bytes as a DNS answer to an SRV, A or AAAA query: records or an error, never a panic
//! (compression pointers that loop or point outside the message included).
#![no_main]

use gocost_config::DnsRecordType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    for t in [DnsRecordType::Srv, DnsRecordType::A, DnsRecordType::Aaaa] {
        let _ = gocost_scrape::discovery::dns::parse_answer(data, id, t);
    }
});
