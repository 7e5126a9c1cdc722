//! `DirectResponse`: an HTTPRoute `ExtensionRef` filter that answers with a
//! fixed status, headers and body (mock APIs, maintenance pages).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A fixed response, referenced from an HTTPRoute filter of type `ExtensionRef`
/// (`group: gatehouse.dev`, `kind: DirectResponse`).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "DirectResponse",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectResponseSpec {
    /// The HTTP status code, 200 to 599.
    pub status: u16,
    /// Response headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<DirectResponseHeader>,
    /// The response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// One header of a [`DirectResponse`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectResponseHeader {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: String,
}
