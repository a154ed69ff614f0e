"""HL7 CDS Hooks 2.0 services (patient-view, order-sign) over the FHIR summary and guidelines."""
