"""Review before merge: what a pull request changes per member (pure; `plan` asks git)."""
