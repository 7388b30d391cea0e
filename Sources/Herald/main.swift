import ArgumentParser
import ServiceLifecycle
import HeraldKafka
import HeraldRedis
print("x")
