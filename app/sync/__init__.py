"""The sync queue's work: SAM.gov client and quota (client.py, quota.py, paging.py), ingestion, analytics."""
