"""infra/ghvault.yaml deployed into moto's CloudFormation, finished where moto stops short.

moto's CloudFormation (5.2.x) creates every resource type of the template except
`AWS::S3::BucketPolicy`, `AWS::SNS::TopicPolicy` and `AWS::Scheduler::Schedule` (it logs
"No Moto CloudFormation support" and skips them; the schedule is created with moto's
Scheduler API, named `<stack>-<logical id>`), and for several types it keeps only some
properties: a bucket gets its name, encryption and tags but not its lifecycle, versioning,
public access block, ownership controls or notifications; a task definition keeps its
family, containers and memory but not its network mode, compatibilities, CPU, roles or
ephemeral storage; a cluster drops its capacity providers; a VPC drops its DNS attributes;
a repository drops its scan-on-push setting and lifecycle policy. moto's S3 also drops a
lifecycle rule's object size filters and always reports TransitionDefaultMinimumObjectSize
all_storage_classes_128K (tests/airflow/test_infra.py checks the template's rule against
the Glacier sensor directly for that reason).

`complete_in_moto` plays CloudFormation's part for exactly those: it reads each resource's
properties from the stack's template, resolved by moto's own resolver against the stack
(parameters, conditions, Ref, GetAtt, Sub, If), and applies them with the service's API
(the same calls CloudFormation's resource handlers make) or, for the task definition,
onto moto's object. Nothing here invents a value the template does not hold, so the
sensors and the Fargate harness see the resources the template describes. It needs moto
in this process (`ThreadedMotoServer`), as `devtools.fargate` does.

    stack = deploy(aws, "ghvault", {"GithubTokenParameterName": "/ghvault/github-token"})
    stack.outputs["AirflowSettings"]   # the Variable ghvault_settings
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "ghvault.yaml"
ACCOUNT = "123456789012"


def load_template(path: Path = TEMPLATE) -> dict:
    """The template as JSON-shaped data (short-form tags such as !Ref become Fn:: keys)."""
    from cfnlint.decode import cfn_yaml

    return json.loads(json.dumps(cfn_yaml.loads(path.read_text())))


@dataclass
class Stack:
    name: str
    outputs: dict[str, str]
    resources: list[dict]  # StackResourceSummaries
    completed: list[str] = field(default_factory=list)  # what complete_in_moto applied

    @property
    def resource_types(self) -> list[str]:
        return sorted({r["ResourceType"] for r in self.resources})

    def physical_id(self, logical_id: str) -> str:
        return next(r["PhysicalResourceId"] for r in self.resources
                    if r["LogicalResourceId"] == logical_id)

    def settings(self, **overrides: Any) -> dict:
        """The AirflowSettings output (the Variable ghvault_settings), with overrides."""
        return {**json.loads(self.outputs["AirflowSettings"]), **overrides}


def deploy(aws, name: str, parameters: dict[str, str] | None = None,
           template: Path = TEMPLATE, timeout: float = 120) -> Stack:
    """Create the stack in moto, wait for CREATE_COMPLETE, complete what moto skips."""
    cf = aws.client("cloudformation")
    cf.create_stack(StackName=name, TemplateBody=template.read_text(),
                    Parameters=[{"ParameterKey": k, "ParameterValue": str(v)}
                                for k, v in (parameters or {}).items()],
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    deadline = time.monotonic() + timeout
    while True:
        described = cf.describe_stacks(StackName=name)["Stacks"][0]
        status = described["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            raise RuntimeError(f"stack {name} is {status}: {described.get('StackStatusReason')}")
        time.sleep(0.5)
    resources = cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
    stack = Stack(name, {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
                  resources)
    stack.completed = complete_in_moto(aws, name)
    return stack


# -- what moto's CloudFormation leaves out -----------------------------------------------------


def _lifecycle_rule(rule: dict) -> dict:
    """One CloudFormation lifecycle rule (AWS::S3::Bucket Rule) as PutBucketLifecycle's."""
    conditions: dict[str, Any] = {}
    if rule.get("Prefix") is not None:
        conditions["Prefix"] = rule["Prefix"]
    for size in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if rule.get(size) is not None:
            conditions[size] = int(rule[size])
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    if tags:
        conditions["Tags"] = tags
    if len(conditions) > 1:
        flt = {"And": conditions}
    elif "Tags" in conditions:
        flt = {"Tag": tags[0]}
    else:
        flt = conditions or {"Prefix": ""}
    out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": flt}
    if rule.get("Transitions"):
        out["Transitions"] = [{"Days": int(t["TransitionInDays"]),
                               "StorageClass": t["StorageClass"]} for t in rule["Transitions"]]
    expiration: dict[str, Any] = {}
    if rule.get("ExpirationInDays") is not None:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if rule.get("ExpiredObjectDeleteMarker") is not None:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        out["Expiration"] = expiration
    if rule.get("NoncurrentVersionExpiration"):
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if rule.get("AbortIncompleteMultipartUpload"):
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(
            rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return out


def lifecycle_configuration(props: dict) -> tuple[dict, str | None]:
    """(LifecycleConfiguration, TransitionDefaultMinimumObjectSize) of a bucket's properties."""
    config = props["LifecycleConfiguration"]
    return ({"Rules": [_lifecycle_rule(r) for r in config["Rules"]]},
            config.get("TransitionDefaultMinimumObjectSize"))


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _bucket(aws, bucket: str, props: dict) -> list[str]:
    s3, done = aws.client("s3"), []
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            k: _bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()})
        done.append("public access block")
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
            {"ObjectOwnership": r["ObjectOwnership"]}
            for r in props["OwnershipControls"]["Rules"]]})
        done.append("ownership controls")
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
            "Status": props["VersioningConfiguration"]["Status"]})
        done.append("versioning")
    if "LifecycleConfiguration" in props:
        config, minimum = lifecycle_configuration(props)
        extra = {"TransitionDefaultMinimumObjectSize": minimum} if minimum else {}
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=config,
                                              **extra)
        done.append("lifecycle")
    topics = (props.get("NotificationConfiguration") or {}).get("TopicConfigurations")
    if topics:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "TopicConfigurations": [{
                "TopicArn": t["Topic"], "Events": [t["Event"]],
                **({"Filter": {"Key": {"FilterRules": t["Filter"]["S3Key"]["Rules"]}}}
                   if t.get("Filter") else {})} for t in topics]})
        done.append("notifications")
    if "ObjectLockConfiguration" in props:
        from moto.s3.models import s3_backends

        # Object Lock can only be switched on when a bucket is created, as CloudFormation
        # does with ObjectLockEnabled: moto's handler created it without, so set the flag.
        backend = s3_backends[ACCOUNT]["aws"]
        if bucket not in backend.buckets:  # moto runs in another process: cannot switch it on
            return [f"AWS::S3::Bucket {item}" for item in done]
        backend.get_bucket(bucket).object_lock_enabled = True
        lock = props["ObjectLockConfiguration"]
        rule = lock["Rule"]["DefaultRetention"]
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": rule["Mode"], "Days": int(rule["Days"])}}})
        done.append("object lock")
    return [f"AWS::S3::Bucket {item}" for item in done]


def _bucket_policy(aws, _physical, props: dict) -> list[str]:
    # moto enforces bucket policies but ignores their Conditions: the template's
    # "Deny s3:* unless aws:SecureTransport" would deny every request. Only statements
    # without a condition are applied; the rest are reported as left out.
    document = props["PolicyDocument"]
    plain = [st for st in document["Statement"] if "Condition" not in st]
    left_out = [st.get("Sid", "?") for st in document["Statement"] if "Condition" in st]
    if plain:
        aws.client("s3").put_bucket_policy(Bucket=props["Bucket"],
                                           Policy=json.dumps({**document, "Statement": plain}))
    note = f" (left out, moto ignores conditions: {', '.join(left_out)})" if left_out else ""
    return [f"AWS::S3::BucketPolicy{note}"]


def _topic_policy(aws, _physical, props: dict) -> list[str]:
    sns = aws.client("sns")
    for topic in props["Topics"]:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                 AttributeValue=json.dumps(props["PolicyDocument"]))
    return ["AWS::SNS::TopicPolicy"]


def _task_definition(aws, arn: str, props: dict) -> list[str]:
    from moto.ecs.models import ecs_backends

    region = arn.split(":")[3]
    try:
        definition = ecs_backends[ACCOUNT][region].describe_task_definition(arn)
    except Exception:  # moto runs in another process (compose): only the API is reachable
        return []
    compat = props.get("RequiresCompatibilities") or ["EC2"]
    definition.requires_compatibilities = compat
    definition.compatibilities = ["EC2", "FARGATE"] if "FARGATE" in compat else ["EC2"]
    definition.network_mode = props.get("NetworkMode", definition.network_mode)
    definition.cpu = props.get("Cpu")
    definition.memory = props.get("Memory", definition.memory)
    if props.get("ExecutionRoleArn"):
        definition.execution_role_arn = props["ExecutionRoleArn"]
    if props.get("TaskRoleArn"):
        definition.task_role_arn = props["TaskRoleArn"]
    if props.get("EphemeralStorage"):
        definition.ephemeral_storage = {
            "sizeInGiB": int(props["EphemeralStorage"]["SizeInGiB"])}
    if props.get("RuntimePlatform"):
        definition.runtime_platform = {
            "operatingSystemFamily": props["RuntimePlatform"]["OperatingSystemFamily"],
            "cpuArchitecture": props["RuntimePlatform"]["CpuArchitecture"]}
    definition.tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
    # CloudFormation gives integer properties their schema type ("4096" from a String
    # parameter becomes 4096); moto keeps the string, and its RunTask then fails adding it
    for container in definition.container_definitions:
        for name in ("memory", "memoryReservation", "cpu", "startTimeout", "stopTimeout"):
            if isinstance(container.get(name), str):
                container[name] = int(container[name])
    return ["AWS::ECS::TaskDefinition network mode, compatibilities, cpu, roles, storage, "
            "integer container fields"]


def _cluster(aws, name: str, props: dict) -> list[str]:
    if not props.get("CapacityProviders"):
        return []
    aws.client("ecs").put_cluster_capacity_providers(
        cluster=name, capacityProviders=props["CapacityProviders"],
        defaultCapacityProviderStrategy=[
            {"capacityProvider": s["CapacityProvider"], "weight": int(s.get("Weight", 0))}
            for s in props.get("DefaultCapacityProviderStrategy", [])])
    return ["AWS::ECS::Cluster capacity providers"]


def _vpc(aws, vpc_id: str, props: dict) -> list[str]:
    ec2, done = aws.client("ec2"), []
    for name in ("EnableDnsSupport", "EnableDnsHostnames"):
        if name in props:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{name: {"Value": _bool(props[name])}})
            done.append(name)
    return [f"AWS::EC2::VPC {', '.join(done)}"] if done else []


def _repository(aws, name: str, props: dict) -> list[str]:
    ecr, done = aws.client("ecr"), []
    if "ImageScanningConfiguration" in props:
        ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={
            "scanOnPush": _bool(props["ImageScanningConfiguration"]["ScanOnPush"])})
        done.append("scan on push")
    if "LifecyclePolicy" in props:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=props[
            "LifecyclePolicy"]["LifecyclePolicyText"])
        done.append("lifecycle policy")
    return [f"AWS::ECR::Repository {', '.join(done)}"] if done else []


def _schedule(aws, name: str, props: dict) -> list[str]:
    """moto has EventBridge Scheduler but no CloudFormation handler for it: create the
    schedule with the Scheduler API from the template's properties, named as
    CloudFormation names it (`<stack>-<logical id>-<suffix>`, here without the suffix)."""
    target = props["Target"]
    ecs = target.get("EcsParameters")
    api_target = {"Arn": target["Arn"], "RoleArn": target["RoleArn"]}
    if "Input" in target:
        api_target["Input"] = target["Input"]
    if "RetryPolicy" in target:
        api_target["RetryPolicy"] = {k: int(v) for k, v in target["RetryPolicy"].items()}
    if ecs:
        params: dict[str, Any] = {"TaskDefinitionArn": ecs["TaskDefinitionArn"],
                                  "TaskCount": int(ecs.get("TaskCount", 1))}
        for key in ("LaunchType", "PlatformVersion", "Group", "PropagateTags", "ReferenceId"):
            if key in ecs:
                params[key] = ecs[key]
        if "CapacityProviderStrategy" in ecs:
            params["CapacityProviderStrategy"] = [
                {"capacityProvider": s["CapacityProvider"], "weight": int(s.get("Weight", 0)),
                 "base": int(s.get("Base", 0))} for s in ecs["CapacityProviderStrategy"]]
        vpc = (ecs.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
        if vpc:
            params["NetworkConfiguration"] = {"awsvpcConfiguration": {
                k: vpc[k] for k in ("Subnets", "SecurityGroups", "AssignPublicIp")
                if vpc.get(k) is not None}}
        api_target["EcsParameters"] = params
    window = {"Mode": props["FlexibleTimeWindow"]["Mode"]}
    if "MaximumWindowInMinutes" in props["FlexibleTimeWindow"]:
        window["MaximumWindowInMinutes"] = int(
            props["FlexibleTimeWindow"]["MaximumWindowInMinutes"])
    extra = {k: props[k] for k in ("Description", "ScheduleExpressionTimezone", "State",
                                   "GroupName") if props.get(k) is not None}
    aws.client("scheduler").create_schedule(
        Name=props.get("Name") or name[:64], ScheduleExpression=props["ScheduleExpression"],
        FlexibleTimeWindow=window, Target=api_target, **extra)
    return ["AWS::Scheduler::Schedule (created with the Scheduler API)"]


COMPLETIONS = {
    "AWS::ECR::Repository": _repository,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::ECS::TaskDefinition": _task_definition,
    "AWS::ECS::Cluster": _cluster,
    "AWS::EC2::VPC": _vpc,
    "AWS::Scheduler::Schedule": _schedule,
}


class _Resource:
    """A created resource as moto's resolver sees it: Ref gives the physical id, GetAtt
    the attributes CloudFormation documents (the few the completions need)."""

    def __init__(self, physical_id: str, attributes: dict[str, str]) -> None:
        self.physical_resource_id = physical_id
        self.attributes = attributes

    def get_cfn_attribute(self, name: str) -> str:
        return self.attributes.get(name, self.physical_resource_id)


class _StackView(dict):
    """Parameters, pseudo parameters and resources of a created stack, read through the
    CloudFormation API, in the shape moto's `clean_json` resolves intrinsics against."""

    def __init__(self, aws, name: str, template: dict) -> None:
        super().__init__()
        cf = aws.client("cloudformation")
        described = cf.describe_stacks(StackName=name)["Stacks"][0]
        region = getattr(aws, "region", "us-east-1")
        self.update({"AWS::AccountId": ACCOUNT, "AWS::Region": region, "AWS::Partition": "aws",
                     "AWS::StackId": described["StackId"], "AWS::StackName": name,
                     "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None})
        for key, spec in template.get("Parameters", {}).items():
            value = spec.get("Default")
            self[key] = "" if value is None else value
        for p in described.get("Parameters", []):
            self[p["ParameterKey"]] = p["ParameterValue"]
        for key, spec in template.get("Parameters", {}).items():
            if spec["Type"] == "CommaDelimitedList":
                value = self[key]
                if isinstance(value, str) and value.startswith("["):
                    # moto describes a list parameter by its Python repr
                    value = ast.literal_eval(value)
                self[key] = value if isinstance(value, list) else str(value).split(",")
        for r in cf.list_stack_resources(StackName=name)["StackResourceSummaries"]:
            if r["LogicalResourceId"] not in template["Resources"]:
                continue  # moto lists the resources it skipped with no id or type
            kind, physical = r["ResourceType"], r.get("PhysicalResourceId") or ""
            attributes = {}
            if template["Resources"][r["LogicalResourceId"]]["Type"] == "AWS::S3::Bucket":
                attributes["Arn"] = f"arn:aws:s3:::{physical}"
            elif kind == "AWS::IAM::Role":
                attributes["Arn"] = aws.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
            elif kind == "AWS::Events::Rule":
                attributes["Arn"] = aws.client("events").describe_rule(Name=physical)["Arn"]
            elif kind == "AWS::ECS::Cluster":
                attributes["Arn"] = aws.client("ecs").describe_clusters(clusters=[physical])[
                    "clusters"][0]["clusterArn"]
            self[r["LogicalResourceId"]] = _Resource(physical, attributes)
        from moto.cloudformation.parsing import LazyDict, parse_condition

        self.lazy_condition_map = LazyDict()
        for condition, body in template.get("Conditions", {}).items():
            self.lazy_condition_map[condition] = functools.partial(
                parse_condition, body, self, self.lazy_condition_map)


def resolved_properties(aws, name: str) -> dict[str, tuple[str, str | None, dict]]:
    """{logical id: (type, physical id, properties resolved)} of the stack's resources whose
    condition holds, resolved by moto's own resolver over what the API says of the stack."""
    from moto.cloudformation.parsing import clean_json

    template = load_template()
    view = _StackView(aws, name, template)
    out = {}
    for logical_id, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition and not view.lazy_condition_map[condition]:
            continue
        props = clean_json(copy.deepcopy(resource.get("Properties", {})), view)
        physical = view.get(logical_id)
        out[logical_id] = (resource["Type"],
                           physical.physical_resource_id if physical else None, props)
    return out


def complete_in_moto(aws, name: str) -> list[str]:
    """Apply what moto's CloudFormation skipped (see the module docstring); say what."""
    done: list[str] = []
    for logical_id, (kind, physical, props) in resolved_properties(aws, name).items():
        handler = COMPLETIONS.get(kind)
        if handler is not None:  # a resource moto skipped has no physical id: name it
            done += handler(aws, physical or f"{name}-{logical_id}", props)
    return done


def main(argv: list[str] | None = None) -> int:
    """Deploy the template into a running moto (docker-compose's one-shot `aws-init`): the
    token parameter first, then the stack; write the Variable's JSON for `airflow-init`."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=main.__doc__)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL",
                                                             "http://127.0.0.1:5000"))
    parser.add_argument("--stack", default="ghvault")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter (repeatable)")
    parser.add_argument("--token-env", default="GITHUB_TOKEN",
                        help="environment variable holding the GitHub token to store in SSM")
    parser.add_argument("--settings-out", type=Path,
                        help="write the Variable ghvault_settings (JSON) to this file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a settings key in the written Variable (repeatable)")
    args = parser.parse_args(argv)

    from devtools.embedded import Aws

    aws = Aws(args.endpoint)
    parameters = dict(p.split("=", 1) for p in args.parameter)
    token_parameter = parameters.get("GithubTokenParameterName", "/ghvault/github-token")
    token = os.environ.get(args.token_env)
    if token:
        aws.client("ssm").put_parameter(Name=token_parameter, Value=token,
                                        Type="SecureString", Overwrite=True)
    cf = aws.client("cloudformation")
    if any(s["StackName"] == args.stack for s in cf.list_stacks()["StackSummaries"]
           if s["StackStatus"] == "CREATE_COMPLETE"):
        print(f"stack {args.stack} exists at {args.endpoint}")
        described = cf.describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    else:
        stack = deploy(aws, args.stack, parameters)
        outputs = stack.outputs
        print(f"stack {args.stack} created at {args.endpoint}: "
              f"{', '.join(stack.resource_types)}")
        print("completed for moto: " + "; ".join(stack.completed))
    settings = {**json.loads(outputs["AirflowSettings"]),
                **{k: json.loads(v) for k, v in (o.split("=", 1) for o in args.set)}}
    text = json.dumps(settings, indent=2)
    if args.settings_out:
        args.settings_out.parent.mkdir(parents=True, exist_ok=True)
        args.settings_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
