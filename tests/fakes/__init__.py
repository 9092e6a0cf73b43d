"""In-memory fakes of outside systems, served over real HTTP for tests."""
