"""Kinds served by a stock Kubernetes API server (plus OpenShift's DeploymentConfig)."""

from __future__ import annotations

BUILTIN_KINDS = frozenset(
    {
        # core/v1
        "Binding", "ComponentStatus", "ConfigMap", "Endpoints", "Event", "LimitRange",
        "Namespace", "Node", "PersistentVolume", "PersistentVolumeClaim", "Pod", "PodTemplate",
        "ReplicationController", "ResourceQuota", "Secret", "Service", "ServiceAccount",
        # apps, batch, autoscaling, policy
        "ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet",
        "CronJob", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget", "PodSecurityPolicy",
        # networking, discovery, rbac
        "Ingress", "IngressClass", "NetworkPolicy", "IPAddress", "ServiceCIDR", "EndpointSlice",
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
        # storage, scheduling, node, coordination
        "CSIDriver", "CSINode", "CSIStorageCapacity", "StorageClass", "VolumeAttachment",
        "VolumeAttributesClass", "PriorityClass", "RuntimeClass", "Lease",
        # extension and admission APIs
        "APIService", "CustomResourceDefinition", "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding", "CertificateSigningRequest", "ClusterTrustBundle",
        "FlowSchema", "PriorityLevelConfiguration", "ResourceClaim", "ResourceClaimTemplate",
        "DeviceClass", "ResourceSlice", "StorageVersionMigration",
        # kinds peers scan that are not upstream but common in manifests
        "DeploymentConfig",
    }
)  # fmt: skip
