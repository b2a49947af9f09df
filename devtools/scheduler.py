"""EventBridge Scheduler firing a schedule whose target is ECS RunTask, played over moto.

moto stores schedules (the Scheduler API) but never fires them. When a schedule fires,
Scheduler assumes the target's role and calls RunTask on the target's cluster with its
`EcsParameters` (task definition, count, capacity provider strategy or launch type,
network configuration) and the target's `Input` as RunTask's `overrides`. `fire` does
exactly that, with the role's credentials from STS, so `devtools.fargate` then runs the task
as it runs any other:

    with FargateEmulator(moto.endpoint, runtime="process") as fargate:
        (arn,) = fire(aws, "ghvault-WatchdogSchedule")
        fargate.wait_idle()
"""

from __future__ import annotations

import json
from typing import Any


def run_task_request(target: dict[str, Any]) -> dict[str, Any]:
    """RunTask's arguments for a schedule's ECS target (Scheduler's API shape)."""
    ecs = target["EcsParameters"]
    request: dict[str, Any] = {"cluster": target["Arn"],
                               "taskDefinition": ecs["TaskDefinitionArn"],
                               "count": int(ecs.get("TaskCount", 1))}
    if ecs.get("CapacityProviderStrategy"):
        request["capacityProviderStrategy"] = ecs["CapacityProviderStrategy"]
    elif ecs.get("LaunchType"):
        request["launchType"] = ecs["LaunchType"]
    for name, key in (("PlatformVersion", "platformVersion"), ("Group", "group"),
                      ("PropagateTags", "propagateTags"), ("ReferenceId", "referenceId")):
        if ecs.get(name):
            request[key] = ecs[name]
    vpc = (ecs.get("NetworkConfiguration") or {}).get("awsvpcConfiguration")
    if vpc:
        request["networkConfiguration"] = {"awsvpcConfiguration": {
            "subnets": vpc["Subnets"], "securityGroups": vpc.get("SecurityGroups", []),
            "assignPublicIp": vpc.get("AssignPublicIp", "DISABLED")}}
    if target.get("Input"):
        request["overrides"] = json.loads(target["Input"])
    return request


def fire(aws, name: str, group: str = "default") -> list[str]:
    """Fire the schedule `name` once, as Scheduler does; the ARNs of the tasks started."""
    import boto3

    schedule = aws.client("scheduler").get_schedule(Name=name, GroupName=group)
    if schedule["State"] != "ENABLED":
        raise RuntimeError(f"schedule {name} is {schedule['State']}: it does not fire")
    target = schedule["Target"]
    if "EcsParameters" not in target:
        raise ValueError(f"schedule {name} does not target ECS RunTask")
    credentials = aws.client("sts").assume_role(
        RoleArn=target["RoleArn"], RoleSessionName=f"scheduler-{name}"[:64])["Credentials"]
    ecs = boto3.client("ecs", endpoint_url=aws.endpoint, region_name=aws.region,
                       aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["SessionToken"])
    response = ecs.run_task(**run_task_request(target))
    if response.get("failures"):
        raise RuntimeError(f"RunTask for schedule {name} failed: {response['failures']}")
    return [task["taskArn"] for task in response["tasks"]]
