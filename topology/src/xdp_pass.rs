//! A minimal XDP program that passes every frame, as a BPF ELF object that `ip link set dev
//! X xdpdrv obj FILE sec xdp` loads (iproute2's loader, with or without libbpf).
//!
//! Why: a veth delivers the frames an XDP program on its peer sends back (`XDP_TX`) only when
//! the veth itself runs an XDP program: on kernel 6.18 the transmit side flushes the peer's
//! XDP ring (schedules its NAPI poll) only if the peer has a program attached. With GRO alone
//! the peer has NAPI and queues the frames, but nothing flushes them: they wait for unrelated
//! traffic (measured: 0 of 20 UDP echoes back within 1 s with GRO on, 20 of 20 with this
//! program). So every bridge port of a topology runs this program (see `plan`).
//!
//! Contract: [`object`] returns the same bytes every time: a relocatable little-endian ELF64
//! for `EM_BPF` with a section `xdp` holding two instructions (`r0 = XDP_PASS; exit`), the
//! global function symbol `strait_pass` over them, a `license` section ("GPL"), `.symtab`,
//! `.strtab` and `.shstrtab`. [`write_object`] writes it to a path atomically (a temporary
//! file renamed over it), so concurrent writers of the same path are harmless.

use std::io;
use std::path::Path;

/// Where `netns::up` writes the object for the plan's steps.
pub const OBJECT_PATH: &str = "/tmp/strait-xdp-pass.o";
/// The program's section, as `sec` on the `ip` command line.
pub const SECTION: &str = "xdp";
/// The program's name (shown by `ip link`).
pub const PROGRAM: &str = "strait_pass";

/// XDP_PASS.
const XDP_PASS: u8 = 2;
/// ELF constants (see elf(5)).
const EM_BPF: u16 = 247;
const ET_REL: u16 = 1;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const EHDR_LEN: usize = 64;
const SHDR_LEN: usize = 64;
const SYM_LEN: usize = 24;

/// One section: name, type, flags, contents, link, info, alignment, entry size.
struct Section {
    name: &'static str,
    kind: u32,
    flags: u64,
    data: Vec<u8>,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// A symbol table entry (elf(5) `Elf64_Sym`).
fn symbol(name: u32, info: u8, shndx: u16, size: u64) -> Vec<u8> {
    let mut s = Vec::with_capacity(SYM_LEN);
    s.extend_from_slice(&name.to_le_bytes());
    s.push(info);
    s.push(0); // st_other: default visibility
    s.extend_from_slice(&shndx.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes()); // st_value
    s.extend_from_slice(&size.to_le_bytes());
    s
}

/// The object's bytes (see the module doc).
pub fn object() -> Vec<u8> {
    object_returning(XDP_PASS)
}

/// The same object with a program that returns `action` for every frame (tests use
/// `XDP_TX` = 3 to bounce frames back out of a host's interface).
pub fn object_returning(action: u8) -> Vec<u8> {
    // r0 = action (BPF_ALU64 | BPF_MOV | BPF_K); exit (BPF_JMP | BPF_EXIT).
    let code = vec![
        0xb7, 0, 0, 0, action, 0, 0, 0, //
        0x95, 0, 0, 0, 0, 0, 0, 0,
    ];
    let strtab = format!("\0{PROGRAM}\0").into_bytes();
    let mut symtab = symbol(0, 0, 0, 0);
    // STB_GLOBAL << 4 | STT_FUNC, in section 1 (xdp).
    symtab.extend(symbol(1, 0x12, 1, code.len() as u64));
    let mut sections = vec![
        Section {
            name: SECTION,
            kind: SHT_PROGBITS,
            flags: SHF_ALLOC | SHF_EXECINSTR,
            data: code,
            link: 0,
            info: 0,
            align: 8,
            entsize: 0,
        },
        Section {
            name: "license",
            kind: SHT_PROGBITS,
            flags: SHF_ALLOC | SHF_WRITE,
            data: b"GPL\0".to_vec(),
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Section {
            name: ".symtab",
            kind: SHT_SYMTAB,
            flags: 0,
            data: symtab,
            link: 4, // .strtab
            info: 1, // first global symbol
            align: 8,
            entsize: SYM_LEN as u64,
        },
        Section {
            name: ".strtab",
            kind: SHT_STRTAB,
            flags: 0,
            data: strtab,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
    ];
    let mut shstrtab = vec![0u8];
    let mut names = Vec::new();
    for name in sections.iter().map(|s| s.name).chain([".shstrtab"]) {
        names.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
    }
    sections.push(Section {
        name: ".shstrtab",
        kind: SHT_STRTAB,
        flags: 0,
        data: shstrtab,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });

    // Contents after the ELF header, each aligned; then the section header table.
    let mut body = Vec::new();
    let mut offsets = Vec::new();
    for s in &sections {
        while !(EHDR_LEN + body.len()).is_multiple_of(s.align as usize) {
            body.push(0);
        }
        offsets.push((EHDR_LEN + body.len()) as u64);
        body.extend_from_slice(&s.data);
    }
    while !(EHDR_LEN + body.len()).is_multiple_of(8) {
        body.push(0);
    }
    let shoff = (EHDR_LEN + body.len()) as u64;
    let shnum = (sections.len() + 1) as u16;

    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // ELF64, LE, version 1
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&ET_REL.to_le_bytes());
    out.extend_from_slice(&EM_BPF.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&shoff.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&(SHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&shnum.to_le_bytes());
    out.extend_from_slice(&(shnum - 1).to_le_bytes()); // e_shstrndx: the last section
    out.extend_from_slice(&body);
    out.extend_from_slice(&[0; SHDR_LEN]); // section 0
    for ((s, name), offset) in sections.iter().zip(&names).zip(&offsets) {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&s.kind.to_le_bytes());
        out.extend_from_slice(&s.flags.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.link.to_le_bytes());
        out.extend_from_slice(&s.info.to_le_bytes());
        out.extend_from_slice(&s.align.to_le_bytes());
        out.extend_from_slice(&s.entsize.to_le_bytes());
    }
    out
}

/// Writes [`object`] to `path` atomically (see the module doc).
pub fn write_object(path: &Path) -> io::Result<()> {
    // Unique per process and per call: threads of one process (tests) write concurrently too.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("o.{}.{n}", std::process::id()));
    std::fs::write(&tmp, object())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(x)
    }

    #[test]
    fn the_object_is_a_relocatable_bpf_elf_with_the_pass_program() {
        let o = object();
        assert_eq!(o, object(), "deterministic");
        assert_eq!(&o[..6], &[0x7f, b'E', b'L', b'F', 2, 1]);
        assert_eq!((u16_at(&o, 16), u16_at(&o, 18)), (ET_REL, EM_BPF));
        let shoff = u64_at(&o, 40) as usize;
        let shnum = usize::from(u16_at(&o, 60));
        assert_eq!(shnum, 6);
        assert_eq!(o.len(), shoff + shnum * SHDR_LEN);
        // Section 1 is `xdp`: executable, the two instructions.
        let sh = shoff + SHDR_LEN;
        let (offset, size) = (u64_at(&o, sh + 24) as usize, u64_at(&o, sh + 32) as usize);
        assert_eq!(u64_at(&o, sh + 8), SHF_ALLOC | SHF_EXECINSTR);
        assert_eq!(offset % 8, 0);
        assert_eq!(
            &o[offset..offset + size],
            &[0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
        );
        // The section names, in order, from .shstrtab.
        let str_sh = shoff + 5 * SHDR_LEN;
        let str_off = u64_at(&o, str_sh + 24) as usize;
        let names: Vec<String> = (1..shnum)
            .map(|i| {
                let at = str_off
                    + u32::from_le_bytes(
                        o[shoff + i * SHDR_LEN..shoff + i * SHDR_LEN + 4]
                            .try_into()
                            .expect("4 bytes"),
                    ) as usize;
                let end = o[at..].iter().position(|b| *b == 0).expect("NUL") + at;
                String::from_utf8_lossy(&o[at..end]).into_owned()
            })
            .collect();
        assert_eq!(names, ["xdp", "license", ".symtab", ".strtab", ".shstrtab"]);
    }

    #[test]
    fn only_the_returned_action_differs() {
        let (pass, tx) = (object(), object_returning(3));
        let diff: Vec<usize> = (0..pass.len()).filter(|&i| pass[i] != tx[i]).collect();
        assert_eq!(diff, [EHDR_LEN + 4]);
        assert_eq!(tx[EHDR_LEN + 4], 3);
    }

    /// A directory removed with its contents on drop, also when the test fails.
    struct RemovedOnDrop(std::path::PathBuf);

    impl Drop for RemovedOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn write_object_replaces_the_file_atomically() {
        let dir = std::env::temp_dir().join(format!("strait-xdp-pass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let _cleanup = RemovedOnDrop(dir.clone());
        let path = dir.join("pass.o");
        std::fs::write(&path, b"old").expect("old");
        write_object(&path).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), object());
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 1);
    }
}
