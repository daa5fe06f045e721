//! Banned floods dropped by the kernel. A banned address refused by the accept loop still
//! costs an accept, a reset and a log line (about 25 µs here): a flood of 10,000 connections
//! a second would keep a quarter of a core busy. Prefixes that flood are therefore compiled
//! into a classic BPF socket filter on the listening socket, which drops their SYNs before
//! the kernel makes a connection of them: no accept, no wake-up, nothing in user space, and
//! no privilege needed (unlike nftables). The filter is replaced whole whenever the set
//! changes, and detached when it empties.

use std::net::IpAddr;

use ipnet::IpNet;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_B_ABS: u16 = 0x30;
const ALU_RSH_K: u16 = 0x74;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
/// `SKF_NET_OFF`: loads relative to the network (IP) header, whatever the socket sees.
const NET: u32 = 0xFFF0_0000;
const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;
/// The kernel takes 4096 instructions, charged to `net.core.optmem_max` (20 KiB on older
/// kernels): 2000 (16 KB) fit everywhere. Prefixes past this budget stay with the accept loop.
const MAX_INSTRUCTIONS: usize = 2000;

/// A filter dropping packets from `prefixes`, as many as fit (the first ones first); `None`
/// when there are none.
pub fn program(prefixes: &[IpNet]) -> Option<Vec<Insn>> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    // The frame around the entries: version test, jumps, returns.
    let mut used = 10;
    for prefix in prefixes {
        let (section, offset) = match prefix.addr() {
            IpAddr::V4(_) => (&mut v4, 12),
            IpAddr::V6(_) => (&mut v6, 8),
        };
        let entry = entry(*prefix, offset);
        if used + entry.len() > MAX_INSTRUCTIONS {
            break;
        }
        used += entry.len();
        section.extend(entry);
    }
    if v4.is_empty() && v6.is_empty() {
        return None;
    }
    // A = IP version; IPv4 falls through to its entries, anything else jumps over them.
    let v4_entries = v4;
    let mut program = vec![insn(LD_B_ABS, 0, 0, NET)];
    program.push(insn(ALU_RSH_K, 0, 0, 4));
    program.push(insn(JMP_JEQ_K, 1, 0, 4));
    let v4_len = u32::try_from(v4_entries.len() + 1).unwrap_or(u32::MAX);
    program.push(insn(JMP_JA, 0, 0, v4_len));
    program.extend(v4_entries);
    program.push(insn(RET_K, 0, 0, ACCEPT));
    // A still holds the version here.
    program.push(insn(JMP_JEQ_K, 1, 0, 6));
    program.push(insn(RET_K, 0, 0, ACCEPT));
    program.extend(v6);
    program.push(insn(RET_K, 0, 0, ACCEPT));
    Some(program)
}

/// Drops a packet whose source address is in `prefix`: each 32-bit word of the source
/// address the prefix covers (at `offset` in the IP header) compared in turn; a mismatch
/// skips to the next entry.
fn entry(prefix: IpNet, offset: u32) -> Vec<Insn> {
    let octets = match prefix.network() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut checks = Vec::new();
    let mut bits = u32::from(prefix.prefix_len());
    for (i, word) in octets.chunks(4).enumerate() {
        if bits == 0 {
            break;
        }
        let value = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        let mask = if bits >= 32 {
            u32::MAX
        } else {
            !(u32::MAX >> bits)
        };
        bits = bits.saturating_sub(32);
        let at = offset + 4 * u32::try_from(i).unwrap_or(0);
        checks.push((at, mask, value & mask));
    }
    // Instructions per check: load, maybe mask, compare; then the drop.
    let lengths: Vec<usize> = checks
        .iter()
        .map(|(_, mask, _)| if *mask == u32::MAX { 2 } else { 3 })
        .collect();
    let total: usize = lengths.iter().sum::<usize>() + 1;
    let mut out = Vec::with_capacity(total);
    for (n, (at, mask, value)) in checks.into_iter().enumerate() {
        out.push(insn(LD_W_ABS, 0, 0, NET + at));
        if mask != u32::MAX {
            out.push(insn(ALU_AND_K, 0, 0, mask));
        }
        // On a mismatch, jump past the rest of this entry, its drop included.
        let rest: usize = lengths[n + 1..].iter().sum::<usize>() + 1;
        out.push(insn(
            JMP_JEQ_K,
            0,
            u8::try_from(rest).unwrap_or(u8::MAX),
            value,
        ));
    }
    out.push(insn(RET_K, 0, 0, DROP));
    out
}

/// Installs `prefixes` as the filter of `socket` (or removes the filter when empty).
pub fn install(socket: socket2::SockRef<'_>, prefixes: &[IpNet]) -> std::io::Result<()> {
    match program(prefixes) {
        Some(program) => {
            let filters: Vec<socket2::SockFilter> = program
                .iter()
                .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
                .collect();
            socket.attach_filter(&filters)
        }
        None => match socket.detach_filter() {
            // None attached.
            Err(e) if e.raw_os_error() == Some(2) => Ok(()),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` over an IP header whose source is `source`, as the kernel would for
    /// the few instructions used here; `true` when the packet is kept.
    fn keeps(program: &[Insn], source: IpAddr) -> bool {
        let mut header = [0u8; 40];
        match source {
            IpAddr::V4(a) => {
                header[0] = 0x45;
                header[12..16].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                header[0] = 0x60;
                header[8..24].copy_from_slice(&a.octets());
            }
        }
        let (mut a, mut pc) = (0u32, 0usize);
        for _ in 0..10_000 {
            let Insn { code, jt, jf, k } = program[pc];
            pc += 1;
            match code {
                LD_B_ABS => a = u32::from(header[(k - NET) as usize]),
                LD_W_ABS => {
                    let at = (k - NET) as usize;
                    a = u32::from_be_bytes(header[at..at + 4].try_into().unwrap());
                }
                ALU_RSH_K => a >>= k,
                ALU_AND_K => a &= k,
                JMP_JA => pc += k as usize,
                JMP_JEQ_K => pc += usize::from(if a == k { jt } else { jf }),
                RET_K => return k != 0,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("the program did not end");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn drops_exactly_the_listed_prefixes_of_either_family() {
        let prefixes: Vec<IpNet> = [
            "192.0.2.7/32",
            "2001:db8:1:2::/64",
            "198.51.100.0/24",
            "2001:db8:ff00::/40",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        let p = program(&prefixes).unwrap();
        for dropped in [
            "192.0.2.7",
            "198.51.100.200",
            "2001:db8:1:2::99",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:db8:ff12::1",
        ] {
            assert!(!keeps(&p, ip(dropped)), "{dropped} kept");
        }
        for kept in [
            "192.0.2.8",
            "192.0.3.7",
            "198.51.101.1",
            "2001:db8:1:3::99",
            "2001:db8:1::2",
            "2001:db8:ef00::1",
            "::1",
            "127.0.0.1",
        ] {
            assert!(keeps(&p, ip(kept)), "{kept} dropped");
        }
        assert!(program(&[]).is_none());
    }

    #[test]
    fn a_long_list_stays_within_the_kernels_limit_and_keeps_the_first() {
        let many: Vec<IpNet> = (0..5000u32)
            .map(|i| IpNet::from(IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i))))
            .collect();
        let p = program(&many).unwrap();
        assert!(p.len() <= MAX_INSTRUCTIONS, "{}", p.len());
        assert!(!keeps(&p, ip("10.0.0.0")));
        assert!(!keeps(&p, ip("10.0.2.0")));
        assert!(
            keeps(&p, ip("10.0.19.135")),
            "past the budget: left to the accept loop"
        );
    }
}
