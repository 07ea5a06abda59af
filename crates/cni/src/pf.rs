//! The PF side of a VF (its `IFLA_VF_*` attributes), behind a small trait: the kernel through
//! netlink in production; in builds with the `test-hooks` feature (tests only, never release
//! binaries) also a JSON file standing in for a PF (see `fake_pf`).

use crate::error::{CniError, Result};
use crate::nl::Netlink;
use crate::plan::{VfChange, VfState};

/// Reads and writes VF attributes through a PF.
pub trait PfControl {
    /// The PF's view of VF `vf`.
    fn vf_state(&mut self, pf: &str, vf: u32) -> Result<VfState>;
    /// One write.
    fn set_vf(&mut self, pf: &str, vf: u32, ch: &VfChange) -> Result<()>;
}

/// The kernel, through a netlink socket in the plugin's netns.
pub struct NetlinkPf<'a> {
    pub nl: &'a mut Netlink,
    /// The last PF looked up and its ifindex (GC may visit several PFs).
    pub index: &'a std::cell::RefCell<Option<(String, u32)>>,
}

impl NetlinkPf<'_> {
    fn pf_index(&mut self, pf: &str) -> Result<u32> {
        if let Some((name, i)) = self.index.borrow().as_ref()
            && name == pf
        {
            return Ok(*i);
        }
        match self.nl.link_by_name(pf) {
            Ok(Some(l)) => {
                *self.index.borrow_mut() = Some((pf.to_string(), l.index));
                Ok(l.index)
            }
            Ok(None) => Err(CniError::internal(format!("PF netdev {pf:?} not found"))),
            Err(e) => Err(CniError::internal(format!("PF {pf:?}: {e}"))),
        }
    }
}

impl PfControl for NetlinkPf<'_> {
    fn vf_state(&mut self, pf: &str, vf: u32) -> Result<VfState> {
        let idx = self.pf_index(pf)?;
        self.nl
            .vf_state(idx, vf)
            .map_err(|e| CniError::internal(format!("PF {pf:?}: {e}")))?
            .ok_or_else(|| CniError::internal(format!("PF {pf:?} reports no VF {vf}")))
    }
    fn set_vf(&mut self, pf: &str, vf: u32, ch: &VfChange) -> Result<()> {
        let idx = self.pf_index(pf)?;
        self.nl
            .set_vf(idx, vf, ch)
            .map_err(|e| CniError::internal(format!("PF {pf:?}: {e}")))
    }
}
