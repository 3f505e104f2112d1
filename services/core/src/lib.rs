//! The domain core of flagnet: flags and their field classes, consents, subject
//! keys and the blind tokens made from them, caller identities, the `Store`
//! trait and the core error type.
//!
//! This crate must never depend on tonic, on a database driver or on anything
//! else of ours: it is what every other crate agrees on. See
//! `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod blind_token;
pub mod clock;
pub mod consent;
pub mod encounter;
pub mod error;
pub mod field_class;
pub mod flag;
pub mod identifier;
pub mod identity;
pub mod normalize;
pub mod policy_version;
pub mod purpose;
pub mod review;
pub mod store;

pub use blind_token::{BlindToken, MatchingKey, SubjectKeyKind, SubjectToken};
pub use clock::{Clock, FixedClock, SystemClock};
pub use consent::{Consent, ConsentBasis, ConsentElements, ConsentScope, NewConsent};
pub use encounter::{Alert, Encounter};
pub use error::{CoreError, CoreResult};
pub use field_class::{FieldClass, FieldClassSet};
pub use flag::{Flag, FlagContent, FlagStatus, NewFlag, TimeBoundBasis};
pub use identifier::{AgencyId, RoleName, UserId};
pub use identity::{Identity, Principal};
pub use policy_version::{
    NewPolicyVersion, PolicyApproval, PolicyChangeKind, PolicyContent, PolicyProposal, PolicyVersion, ProposalClosing,
    ProposalOutcome,
};
pub use purpose::Purpose;
pub use review::{ReviewItem, ReviewResolution};
pub use store::{FlagMatch, Store};
