//! A byte of independent boolean flags, for per-connection state kept small.

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    pub fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.0 |= flag;
        } else {
            self.0 &= !flag;
        }
    }
}
