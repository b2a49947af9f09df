"""Tests of the Airflow side: the DAG, the operators, the CloudFormation stack, compose."""
