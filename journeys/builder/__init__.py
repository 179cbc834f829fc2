"""The journey builder on the map page: forms, services (shared with the admin), views."""
