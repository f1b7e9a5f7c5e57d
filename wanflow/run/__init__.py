"""Running a plan: the session, the scheduler, the asyncio executor and its reporters."""
