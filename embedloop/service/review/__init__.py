"""The approver's review pages."""
