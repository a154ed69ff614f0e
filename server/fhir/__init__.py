"""FHIR R4 patient context: validated resources reduced to the minimum a model needs."""
