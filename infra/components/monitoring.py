"""What on-call looks at first, and what wakes them.

Dashboard rows: the API (requests, 4xx, 5xx, latency p50/p99); each function (errors, duration p99,
throttles, concurrency); the database (connections, CPU, capacity); the business (meetings created
and ended, joins, join latency, failures by cause: transcription and recording causes appear as
their handlers emit them); recordings and the call's life (recordings started/completed/failed,
processing time, meeting duration, meetings ended empty, attendees dropped, download links issued,
object versions deleted by retention and erasure); transcripts and the clinical record (transcriptions
started/failed, transcripts built/dropped/deleted, malformed transcript lines, and the time from a
meeting's end to its finished clinical record, p50/p90).
Alarms -> one KMS-encrypted SNS topic (subscribers from context): API 5xx rate, function errors
(scheduled jobs: a failed run), throttles, dead-letter queue depth (event rules and schedules),
recording failures, recordings stuck, transcription failures, Comprehend Medical failing, database
saturation, RDS Proxy sessions pinned. Each description says, in one sentence, what happened and
what to do.
"""

from __future__ import annotations

from aws_cdk import Duration, NestedStack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

NAMESPACE = "Telehealth/VideoCall"
FIVE_MINUTES = Duration.minutes(5)
FIFTEEN_MINUTES = Duration.minutes(15)


def business(
    name: str,
    statistic: str = "Sum",
    label: str | None = None,
    period: Duration = FIVE_MINUTES,
    **dimensions: str,
) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": "videocall", **dimensions},
        statistic=statistic,
        period=period,
        label=label,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        key: kms.IKey,
        alarm_emails: tuple[str, ...],
        api: apigw.RestApi,
        functions: dict[str, lambda_.Function],
        dead_letter_queues: dict[str, sqs.Queue],
        scheduled_jobs: tuple[str, ...],
        cluster: rds.DatabaseCluster | None,
        proxy: rds.DatabaseProxy | None = None,
        comprehend_medical_region: str = "eu-west-1",
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"videocall {stage} alarms", master_key=key, enforce_ssl=True
        )
        for email in alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        # The alarms live in a nested stack of their own: one per function makes them the largest group of
        # resources, and CloudFormation caps a template at 500. The topic and the dashboard stay here (the
        # topic's email subscriptions and the dashboard's fixed name must not be recreated).
        self.alarm_stack = NestedStack(self, "AlarmStack", description=f"videocall {stage}: alarms")

        def alarm(name: str, metric: cw.IMetric, threshold: float, description: str, periods: int = 1) -> None:
            made = cw.Alarm(
                self.alarm_stack,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                alarm_description=description,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            made.add_alarm_action(action)
            made.add_ok_action(action)
            self.alarms.append(made)

        requests = api.metric_count(period=FIVE_MINUTES)
        server_errors = api.metric_server_error(period=FIVE_MINUTES)
        error_rate = cw.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": server_errors},
            label="5xx %",
            period=FIVE_MINUTES,
        )
        alarm(
            "Api5xxRate",
            error_rate,
            2,
            "More than 2% of API requests failed with 5xx for 10 minutes: check the function errors and the "
            "Failures-by-cause graph on the dashboard",
            periods=2,
        )
        # One alarm per function on errors + throttles (one resource, not two: the stack stays under
        # CloudFormation's 500 resources); the dashboard graphs the two apart.
        throttled = (
            "; or throttled (reserved concurrency or account limit reached): raise reservedConcurrency or the "
            "account's Lambda concurrency quota"
        )
        for name, function in functions.items():
            alarm(
                f"{name}Failures",
                cw.MathExpression(
                    expression="errors + throttles",
                    using_metrics={
                        "errors": function.metric_errors(period=FIVE_MINUTES),
                        "throttles": function.metric_throttles(period=FIVE_MINUTES),
                    },
                    label=f"{name} errors + throttles",
                    period=FIVE_MINUTES,
                ),
                1,
                (
                    f"{name}: a scheduled run failed (crash or timeout), so its work waits for the next run: read "
                    "the run's logs and fix the cause"
                    if name in scheduled_jobs
                    else f"{name}: invocations failed (crash or timeout, not 4xx): read the function's error logs "
                    "and X-Ray traces"
                )
                + throttled,
            )
        for name, queue in dead_letter_queues.items():
            alarm(
                f"{name}DlqDepth",
                queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES),
                1,
                f"{name}: scheduled runs failed or queued too long behind a slow run (DLQ not empty): read the "
                "job's logs, fix the cause, then purge the DLQ (the next run catches up)"
                if name in scheduled_jobs
                else f"{name}: Chime events could not be handled (DLQ not empty): read the function's logs, fix "
                "the cause, then redrive the DLQ (handlers are idempotent)",
            )
        alarm(
            "RecordingFailures",
            business("RecordingFailures"),
            1,
            "Recordings failed (pipeline failure, or stuck and given up): check the Failures-by-cause graph "
            "and the media pipeline events of the affected meetings; the visit's recording may be incomplete",
        )
        alarm(
            "RecordingsStuck",
            business("Failures", cause="recording_stuck"),
            1,
            "Recordings stayed starting or processing too long and the reconciler gave up on them: check the "
            "chime_pipeline_events function and the media pipelines' state in the console",
        )
        alarm(
            "TranscriptionFailures",
            business("TranscriptionFailures"),
            1,
            "Live transcription failed for a meeting (TranscriptionFailed): read the session's error_message; "
            "check the transcription service-linked role and the language/region policy",
        )
        alarm(
            "MedicalExtractionFailures",
            business("Failures", period=FIFTEEN_MINUTES, cause="medical_extraction"),
            3,
            "Comprehend Medical calls failing: records are marked incomplete and the reconciler retries; check "
            f"throttling/quotas in {comprehend_medical_region}",
        )
        if cluster is not None:
            alarm(
                "DbCpu",
                cluster.metric_cpu_utilization(period=FIVE_MINUTES),
                80,
                "Database CPU at or above 80% for 15 minutes: look for slow queries in Performance Insights",
                periods=3,
            )
            alarm(
                "DbCapacity",
                cluster.metric("ACUUtilization", period=FIVE_MINUTES, statistic="Average"),
                90,
                "Aurora Serverless at 90% of its maximum capacity: raise serverless_v2_max_capacity",
                periods=3,
            )
        pinned = _proxy_metric(proxy, "DatabaseConnectionsCurrentlySessionPinned") if proxy is not None else None
        if pinned is not None:
            # The functions use server-side prepared statements (DB_PREPARE_THRESHOLD), which RDS Proxy
            # multiplexes; if a proxy change ever made them pin, this is where it shows first.
            alarm(
                "DbProxyPinning",
                pinned,
                20,
                "20 or more RDS Proxy sessions pinned to a database connection for 15 minutes, so the proxy "
                "no longer shares connections and its pool can run out: if it began with a deploy or a proxy "
                "change, set DB_PREPARE_THRESHOLD=off (no server-side prepared statements) and redeploy, else "
                "read the proxy's logs for what pinned",
                periods=3,
            )

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"videocall-{stage}")
        dashboard.add_widgets(
            cw.TextWidget(markdown=f"# videocall {stage}: API", width=24, height=1),
            cw.GraphWidget(title="Requests", left=[requests], width=6),
            cw.GraphWidget(
                title="4xx / 5xx", left=[api.metric_client_error(period=FIVE_MINUTES), server_errors], width=6
            ),
            cw.GraphWidget(title="5xx rate %", left=[error_rate], width=6),
            cw.GraphWidget(
                title="Latency p50 / p99",
                left=[
                    api.metric_latency(period=FIVE_MINUTES, statistic="p50"),
                    api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                ],
                width=6,
            ),
        )
        dashboard.add_widgets(cw.TextWidget(markdown="# Functions", width=24, height=1))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Errors",
                left=[f.metric_errors(period=FIVE_MINUTES, label=n) for n, f in functions.items()],
                width=6,
            ),
            cw.GraphWidget(
                title="Duration p99",
                left=[f.metric_duration(period=FIVE_MINUTES, statistic="p99", label=n) for n, f in functions.items()],
                width=6,
            ),
            cw.GraphWidget(
                title="Throttles",
                left=[f.metric_throttles(period=FIVE_MINUTES, label=n) for n, f in functions.items()],
                width=6,
            ),
            cw.GraphWidget(
                title="Concurrent executions",
                left=[
                    cw.Metric(
                        namespace="AWS/Lambda",
                        metric_name="ConcurrentExecutions",
                        dimensions_map={"FunctionName": f.function_name},
                        statistic="Maximum",
                        period=FIVE_MINUTES,
                        label=n,
                    )
                    for n, f in functions.items()
                ],
                width=6,
            ),
        )
        if cluster is not None:
            dashboard.add_widgets(cw.TextWidget(markdown="# Database", width=24, height=1))
            dashboard.add_widgets(
                cw.GraphWidget(
                    title="Connections", left=[cluster.metric_database_connections(period=FIVE_MINUTES)], width=8
                ),
                cw.GraphWidget(title="CPU %", left=[cluster.metric_cpu_utilization(period=FIVE_MINUTES)], width=8),
                cw.GraphWidget(
                    title="Capacity (ACU) and utilization %",
                    left=[cluster.metric("ServerlessDatabaseCapacity", period=FIVE_MINUTES, statistic="Average")],
                    right=[cluster.metric("ACUUtilization", period=FIVE_MINUTES, statistic="Average")],
                    width=8,
                ),
            )
        if proxy is not None and pinned is not None:
            dashboard.add_widgets(
                cw.GraphWidget(
                    title="RDS Proxy: client / database connections, sessions pinned",
                    left=[_proxy_metric(proxy, "ClientConnections"), _proxy_metric(proxy, "DatabaseConnections")],
                    right=[pinned],
                    width=24,
                )
            )
        dashboard.add_widgets(cw.TextWidget(markdown="# Consultations", width=24, height=1))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Meetings created / ended", left=[business("MeetingsCreated"), business("MeetingsEnded")], width=6
            ),
            cw.GraphWidget(title="Joins", left=[business("Joins"), business("AttendeesAdded")], width=6),
            cw.GraphWidget(
                title="Join latency p50 / p99 (ms)",
                left=[business("JoinLatency", "p50"), business("JoinLatency", "p99")],
                width=6,
            ),
            cw.GraphWidget(
                title="Failures by cause (incl. transcription, recording)",
                left=[
                    cw.MathExpression(
                        expression=f"SEARCH('{{{NAMESPACE},cause,service}} MetricName=\"Failures\"', 'Sum', 300)",
                        label="",
                        period=FIVE_MINUTES,
                    )
                ],
                width=6,
            ),
        )
        dashboard.add_widgets(cw.TextWidget(markdown="# Recordings and the call's life", width=24, height=1))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Recordings started / completed / failed",
                left=[
                    business("RecordingsStarted", label="started"),
                    business("RecordingsCompleted", label="completed"),
                    business("RecordingFailures", label="failed"),
                ],
                width=6,
            ),
            cw.GraphWidget(
                title="Recording processing (s): stop to artifacts",
                left=[
                    business("RecordingProcessingSeconds", "Average", label="average"),
                    business("RecordingProcessingSeconds", "p99", label="p99"),
                ],
                width=6,
            ),
            cw.GraphWidget(
                title="Meeting duration (s, average)",
                left=[business("MeetingDuration", "Average", label="average")],
                width=6,
            ),
            cw.GraphWidget(
                title="Meetings ended empty / attendees dropped",
                left=[
                    business("MeetingsEndedEmpty", label="ended empty"),
                    business("AttendeesDropped", label="attendees dropped"),
                ],
                width=6,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Recording download links issued",
                left=[business("RecordingLinksIssued", label="links")],
                width=12,
            ),
            cw.GraphWidget(
                title="Recordings and object versions deleted (retention, erasure)",
                left=[
                    business("RecordingsDeleted", label="recordings"),
                    business("ObjectVersionsDeleted", label="object versions"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(cw.TextWidget(markdown="# Transcripts and the clinical record", width=24, height=1))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Transcriptions started / failed",
                left=[
                    business("TranscriptionsStarted", label="started"),
                    business("TranscriptionFailures", label="failed"),
                ],
                width=6,
            ),
            cw.GraphWidget(
                title="Transcripts built / dropped / deleted",
                left=[
                    business("TranscriptsBuilt", label="built"),
                    business("TranscriptsDropped", label="dropped"),
                    business("TranscriptsDeleted", label="deleted (retention, erasure)"),
                ],
                width=6,
            ),
            cw.GraphWidget(
                title="Malformed transcript lines (skipped)",
                left=[business("TranscriptMalformedLines", label="lines")],
                width=6,
            ),
            cw.GraphWidget(
                title="Clinical record (s): meeting end to finished record, p50 / p90",
                left=[
                    business("ClinicalRecordSeconds", "p50", label="p50"),
                    business("ClinicalRecordSeconds", "p90", label="p90"),
                ],
                width=6,
            ),
        )
        dashboard.add_widgets(cw.TextWidget(markdown="# In the call: controls and feedback", width=24, height=1))
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Call rating (1-5), average / answers",
                left=[business("CallRating", "Average", label="average rating", period=Duration.hours(1))],
                right=[business("CallFeedback", label="answers", period=Duration.hours(1))],
                width=8,
            ),
            cw.GraphWidget(
                title="Issues reported after calls",
                left=[
                    business("CallIssues", label=issue, period=Duration.hours(1), issue=issue)
                    for issue in ("audio", "video", "connection", "other")
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Waiting room and moderation",
                left=[
                    business("LobbyWaits", label="patients waiting"),
                    business("ParticipantsRemoved", label="participants removed"),
                ],
                width=8,
            ),
        )
        self.dashboard = dashboard


def _proxy_metric(proxy: rds.DatabaseProxy, name: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/RDS",
        metric_name=name,
        dimensions_map={"ProxyName": proxy.db_proxy_name},
        statistic="Average",
        period=FIVE_MINUTES,
    )
