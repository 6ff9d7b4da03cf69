-- The site's date each deviation happened on (the visit's, the surgery's, the late report's, the randomization's);
-- empty for one recorded before the record kept it, whose recording date stands in.
ALTER TABLE protocol_deviations ADD COLUMN occurred_on date;
