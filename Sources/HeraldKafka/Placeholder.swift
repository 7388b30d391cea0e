import CRdKafka
import HeraldCore
