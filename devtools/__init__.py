"""Developer tools: the local demo and the moto harnesses that `make run`, docker-compose and
the tests share. They are not tests and not product code.

- `embedded`: `make run` (`python -m devtools.embedded`), the whole pipeline on one machine
  (moto as AWS, the GitHub simulator as GitHub, Airflow's `dags test`).
- `stack`: infra/ghvault.yaml deployed into moto's CloudFormation and finished where moto
  stops short; `python -m devtools.stack` is docker-compose's one-shot `aws-init`.
- `fargate`: Fargate played over moto, so ECS tasks moto accepts really run here.
- `floor`: the fewest requests a complete backup of a simulated owner can make (the tests
  and the benchmark measure ghvault against it).
"""
