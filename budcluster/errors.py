"""The root of the project's exception tree.

Like kopf, errors say whether retrying can help: a :class:`TemporaryError` may
succeed on a later attempt (a timeout, a 503), a :class:`PermanentError` never
will (bad input, a missing key). Prefect tasks use this to decide on retries.
Each adapter derives its own errors from these and chains the original cause
(``raise ... from exc``), so the first line says what failed in our terms and the
traceback still shows the library's error.

The tree (each class also inherits Permanent or Temporary as marked)::

    BudClusterError
    ├── PermanentError
    │   ├── ConfigurationError            bad input; the message names the field and the fix
    │   │   ├── InvalidImageReference, KubeconfigInvalid, ModelFactsError,
    │   │   │   DemoModelError, UnsafeSecretsDir, UsageError (the CLI)
    │   ├── CryptoError                   crypto.errors: MissingKeyError, InsecureKeyFileError,
    │   │                                 KeyDirectoryError, KeyFileExistsError, WrongKeyError,
    │   │                                 TamperedCiphertextError, MalformedEnvelopeError,
    │   │                                 BindingError > UnboundCredentialError
    │   ├── NoFeasiblePlan                planning: nothing fits; the message gives the advice
    │   ├── IllegalTransition             lifecycle: a deployment state change not allowed
    │   ├── InvalidValue                  store.validation
    │   ├── RuntimeBuildError             runtimes: llama-server / vLLM CPU build failed
    │   ├── GatewayError > GatewayHasNoRoutes
    │   ├── FailpointTriggered            failpoints: a fault test stopped the run on purpose
    │   └── EndpointWrongModel            the endpoint serves another model
    ├── TemporaryError
    │   ├── EndpointNotReady, RuntimeBuildTimeout, NotRegistered
    ├── TargetError                       targets.base: a cluster target failed
    │   ├── RuntimeFailed (P)             the runtime died; carries its last log lines
    │   ├── KubernetesTargetError         KubernetesTargetTemporary (T),
    │   │                                 KubernetesTargetConfigError (P), KubernetesRuntimeFailed
    │   └── HostsTargetError              HostsConfigError (P), HostsOperationFailed (P),
    │                                     HostsUnavailable (T)
    ├── TransferError                     UnsafeModelPath (P), InvalidDestination (P),
    │                                     ManifestMismatch (P), SourceNotFound (P),
    │                                     InvalidSourceUri (P), SourceUnavailable (T),
    │                                     InvalidManifest (P), DestinationFull (P),
    │                                     DestinationBusy (T)
    ├── CommandFailed                     the CLI: a system it drives (the Prefect API) refused
    ├── StoreError                        StoreUnavailable (T) > StoreInterrupted (T) |
    │                                     RunKeptInFile (T), NotFound (P), Conflict (P),
    │                                     SchemaMissing (P), IllegalTransition (P),
    │                                     InvalidPendingFile (P)
    ├── CredentialUnavailable             bench.access: a credential plugin issued nothing
    │   └── ExecPluginError               adapters.exec_credential: ExecPluginFailed (P),
    │                                     ExecPluginTimeout (T)
    └── one tree per adapter (budcluster.adapters):
        ├── KubernetesError               KubernetesConfigError (P), KubernetesUnavailable (T)
        │                                 > KubernetesServerError, KubernetesApiError (P)
        │                                 > KubernetesNotFound | KubernetesConflict,
        │                                 KubernetesTimeout (T)
        ├── AnsibleError                  AnsibleConfigError (P), PlaybookFailed (P),
        │                                 HostUnreachable (T), AnsibleTimeout (T)
        ├── HelmError                     HelmChartError (P), HelmRenderError (P), HelmTimeout (T)
        ├── TerraformError                TerraformConfigError (P), TerraformCommandFailed (P),
        │                                 TerraformStateLocked (T), TerraformTimeout (T)
        └── S3Error                       S3ConfigError (P), S3Unavailable (T), S3NotFound (P),
                                          S3RequestFailed (P)

``tests/test_error_tree.py`` checks this drawing against the classes.
"""

from __future__ import annotations


class BudClusterError(Exception):
    """Base class of every error this project raises on purpose."""


class PermanentError(BudClusterError):
    """Retrying will not help: the input, the configuration or the state is wrong."""


class TemporaryError(BudClusterError):
    """The operation may succeed if retried later."""


class ConfigurationError(PermanentError):
    """A setting or an input file is invalid. The message names the field and the fix."""
